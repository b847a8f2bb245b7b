"""The LLM usage ledger on the data database: one row per call, the day's spend."""
from __future__ import annotations

import pytest

from blofin_pipeline.llm.budget import build_usage_row
from blofin_pipeline.store import open_store
from blofin_pipeline.store.usage import LLM_USAGE_KEY, UsageLog, usage_record

DAY = "2026-11-24"


def row(request_id: str | None, *, step: str = "design", status: str = "ok") -> dict:
    return build_usage_row(step=step, model="claude-opus-5", usage={"input_tokens": 1000, "output_tokens": 2000},
                           latency_ms=12.0, request_id=request_id, status=status)


def test_rows_are_kept_per_call_and_summed_for_the_day(db_url):
    with open_store(db_url) as store:
        ledger = UsageLog(store, f"{DAY}T00:00:00+00:00")
        assert ledger.spent_usd() == 0.0
        ledger.record(row("req_1"))
        ledger.record(row("req_1"))  # a task retry replaying the same request: counted once
        ledger.record(row(None, status="error"))  # no request id: kept apart, never merged
        ledger.record(row(None, status="error"))
        UsageLog(store, "2026-11-23").record(row("req_0"))  # another day
        rows = store.query("SELECT * FROM llm_usage WHERE run_date = :d ORDER BY call_id", {"d": DAY})
        spent = ledger.spent_usd()
        assert spent == UsageLog(store, DAY).spent_usd()
    assert [r["call_id"] for r in rows][-1] == "req_1" and len(rows) == 3
    assert sum(1 for r in rows if r["call_id"].startswith("local_")) == 2
    assert spent == pytest.approx(sum(r["usd"] for r in rows))
    assert sum(r["usd"] for r in rows) == pytest.approx(3 * row("x")["usd"])  # error rows are priced from their usage too
    assert "sqlite" not in repr(ledger) and "postgres" not in repr(ledger)


def test_usage_record_maps_a_row_to_the_table_columns():
    record = usage_record(row("req_9", step="review"), run_date="2026-11-24T00:00:00+00:00", created_at="t")
    assert set(LLM_USAGE_KEY) <= set(record)
    assert (record["run_date"], record["step"], record["call_id"]) == ("2026-11-24", "review", "req_9")
    assert record["usd"] == row("req_9")["usd"] and record["status"] == "ok" and record["created_at"] == "t"
    a = usage_record(row(None), run_date=DAY, created_at="t")
    b = usage_record(row(None), run_date=DAY, created_at="t")
    assert a["call_id"].startswith("local_") and a["call_id"] != b["call_id"]
