"""The LLM usage ledger on the data database: a row per attempt under a local id, reservations
held until settled, and a budget check that parallel workers cannot both pass."""
from __future__ import annotations

import multiprocessing
import time

import pytest

from blofin_pipeline.exceptions import LLMBudgetExceeded
from blofin_pipeline.llm.budget import budget_check, build_usage_row
from blofin_pipeline.store import open_store
from blofin_pipeline.store.usage import UsageLog, attempts_on

DAY = "2026-11-24"


def settled(request_id: str | None, status: str = "ok") -> dict:
    return build_usage_row(step="design", model="claude-opus-5", usage={"input_tokens": 1000, "output_tokens": 2000},
                           latency_ms=12.0, request_id=request_id, status=status)


def reserve(ledger: UsageLog, usd: float, budget: float | None = None, step: str = "design") -> str:
    return ledger.reserve(step=step, attempt=1, model="claude-opus-5", mode="direct", reserved_usd=usd,
                          check=budget_check(budget, usd, step=step))


def test_a_reservation_counts_its_worst_case_until_it_is_settled(db_url):
    with open_store(db_url) as store:
        ledger = UsageLog(store, f"{DAY}T00:00:00+00:00")
        first = reserve(ledger, 0.40, budget=1.0)
        assert ledger.spent_usd() == pytest.approx(0.40)
        ledger.settle(first, settled("req_1"))
        assert ledger.spent_usd() == pytest.approx(settled("x")["usd"])  # $0.055 on opus-5
        with pytest.raises(LLMBudgetExceeded):
            reserve(ledger, 0.95, budget=1.0)  # 0.055 + 0.95 > 1.0: refused, nothing written
        assert len(attempts_on(store, DAY)) == 1
        reserve(ledger, 0.9, budget=1.0)
        UsageLog(store, "2026-11-23").settle(reserve(UsageLog(store, "2026-11-23"), 5.0), settled("req_0"))
        rows = attempts_on(store, DAY)
    assert [r["status"] for r in rows] == ["ok", "reserved"]
    assert rows[0]["request_id"] == "req_1" and rows[0]["attempt_id"].startswith("att_")
    assert rows[0]["settled_at"] and rows[1]["settled_at"] is None
    assert "sqlite" not in repr(ledger) and "postgres" not in repr(ledger)


def test_a_repeated_request_id_never_merges_two_attempts(db_url):
    with open_store(db_url) as store:
        ledger = UsageLog(store, DAY)
        for status in ("invalid", "ok", "error", "ok"):
            ledger.settle(reserve(ledger, 0.5), settled("req_same", status))
        rows = attempts_on(store, DAY)
        spent = ledger.spent_usd()
    assert len(rows) == 4 and {r["request_id"] for r in rows} == {"req_same"}
    assert len({r["attempt_id"] for r in rows}) == 4
    assert spent == pytest.approx(4 * settled("x")["usd"])


def test_batch_attempts_learn_their_batch_and_stay_open_until_answered(db_url):
    with open_store(db_url) as store:
        ledger = UsageLog(store, DAY)
        attempt = ledger.reserve(step="tune", attempt=1, model="claude-sonnet-5", mode="batch", reserved_usd=0.1,
                                 check=budget_check(None, 0.1, step="tune"))
        ledger.mark_batch([attempt], "msgbatch_1")
        waiting = ledger.open_batch_attempts("tune")
        assert [(w["attempt_id"], w["request_id"]) for w in waiting] == [(attempt, "msgbatch_1")]
        assert ledger.open_batch_attempts("design") == []
        ledger.settle(attempt, {**settled("msgbatch_1"), "step": "tune"})
        assert ledger.open_batch_attempts("tune") == []


def _reserve_in_a_process(db_url: str, barrier, results) -> None:
    def slow_check(spent: float) -> None:
        time.sleep(0.3)  # a wide window: without the lock both workers would read the same spend
        budget_check(1.0, 0.6, step="design")(spent)

    with open_store(db_url) as store:
        barrier.wait()
        try:
            UsageLog(store, DAY).reserve(step="design", attempt=1, model="claude-opus-5", mode="direct",
                                         reserved_usd=0.6, check=slow_check)
            results.put("reserved")
        except LLMBudgetExceeded:
            results.put("refused")


def test_two_workers_cannot_both_spend_the_last_of_the_budget(db_url):
    open_store(db_url).close()  # migrated once, before the race
    mp = multiprocessing.get_context("spawn")
    barrier, results = mp.Barrier(2), mp.Queue()
    workers = [mp.Process(target=_reserve_in_a_process, args=(db_url, barrier, results)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["refused", "reserved"]
    with open_store(db_url) as store:
        assert len(attempts_on(store, DAY)) == 1
