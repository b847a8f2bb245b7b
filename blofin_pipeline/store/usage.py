"""The LLM usage ledger: one `llm_usage` row per API call, and the day's spend.

`UsageLog` is the ledger the structured-call policy of `blofin_pipeline.llm` writes to
(it has the `record` / `spent_usd` pair that policy expects), bound to one run date and
to the step's open Store. Each row is upserted on (run_date, step, call_id), so a task
retry that replays the same request id does not count it twice.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from blofin_pipeline.store.connection import Store, utc_now

#: Key of the `llm_usage` table (include/sql/migrations/001_initial.sql).
LLM_USAGE_KEY: tuple[str, ...] = ("run_date", "step", "call_id")


def usage_record(row: Mapping[str, Any], *, run_date: str, created_at: str) -> dict[str, Any]:
    """A usage row (`blofin_pipeline.llm.budget.build_usage_row`) in the table's columns.

    `call_id` is the API request id, or a fresh local id when the call never got one
    (connection failure, malformed body), so such rows are kept, not merged.
    """
    return {
        "run_date": run_date[:10],
        "step": row["step"],
        "call_id": row.get("request_id") or f"local_{uuid.uuid4().hex}",
        "model": row["model"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cache_creation_tokens": row["cache_creation_tokens"],
        "cache_read_tokens": row["cache_read_tokens"],
        "usd": row["usd"],
        "latency_ms": row["latency_ms"],
        "status": row["status"],
        "created_at": created_at,
    }


def record_usage(store: Store, run_date: str, row: Mapping[str, Any]) -> None:
    """Write one call's usage row under `run_date`."""
    store.upsert("llm_usage", [usage_record(row, run_date=run_date, created_at=utc_now())], key=LLM_USAGE_KEY)


def spent_usd(store: Store, run_date: str) -> float:
    """USD spent on LLM calls on `run_date` (every status: failed attempts are paid too)."""
    rows = store.query_named("usage_spent_on_run_date", {"run_date": run_date[:10]})
    return float(rows[0]["usd"] or 0.0)


def usage_by_step_model(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's calls by step, model and status: calls, tokens, USD, mean latency (report)."""
    return store.query_named("usage_by_step_model", {"run_date": run_date})


class UsageLog:
    """The usage ledger of one run date on an open Store."""

    def __init__(self, store: Store, run_date: str) -> None:
        self.store = store
        self.run_date = run_date

    def __repr__(self) -> str:  # the Store's URL may hold a database password
        return f"UsageLog(run_date={self.run_date!r})"

    def record(self, row: Mapping[str, Any]) -> None:
        record_usage(self.store, self.run_date, row)

    def spent_usd(self) -> float:
        return spent_usd(self.store, self.run_date)
