"""The forward record's and the signals' repositories on both databases."""
from __future__ import annotations

import pytest

from blofin_pipeline.store import open_store, utc_now
from blofin_pipeline.store.forward import (
    backtest_at,
    forward_rows_until,
    kept_on,
    latest_ranked_date,
    replace_forward_rows,
    tracked_on,
)
from blofin_pipeline.store.rankings import upsert_decisions
from blofin_pipeline.store.signals import (
    latest_signals_date,
    replace_signals,
    signals_on,
)
from tests.reporting.seed import add_result, add_strategy

DECISIONS = {  # date -> {item: decision}
    "2026-04-01": {"a@1": "kept", "b@1": "kept", "c@1": "archived"},
    "2026-04-02": {"a@1": "kept", "b@1": "archived"},
    "2026-04-03": {"a@1": "kept", "d@1": "kept"},
}


def _seed(store) -> None:
    for name in "abcd":
        add_strategy(store, name)
    upsert_decisions(store, [
        {"run_date": d, "item_type": "strategy", "item": item, "metric": "score", "value": 0.0, "rank": rank,
         "decision": decision, "reason": "r", "created_at": utc_now()}
        for d, items in DECISIONS.items() for rank, (item, decision) in enumerate(items.items(), start=1)])


def _row(run_date: str, name: str, symbol: str = "BTC-USDT", n: int = 1) -> dict:
    return {"run_date": run_date, "strategy": name, "version": 1, "symbol": symbol, "timeframe": "1H",
            "promoted_on": "2026-04-01", "code_hash": "h", "params": {}, "first_bar": "x", "last_bar": "y",
            "n_bars": n, "day_return": 0.0, "expected_sharpe": 1.0, "bars": [[0, 1.0, 0.0, 0.0]] * n,
            "synthetic": 1, "created_at": utc_now()}


def test_who_is_tracked_and_kept_with_their_promotion(db_url):
    with open_store(db_url) as store:
        _seed(store)
        # Tracked on a date: kept by the latest ranking before it (an archived one stops).
        assert tracked_on(store, "2026-04-02") == [
            {"name": "a", "version": 1, "promoted_on": "2026-04-01"},
            {"name": "b", "version": 1, "promoted_on": "2026-04-01"}]
        assert [(t["name"], t["promoted_on"]) for t in tracked_on(store, "2026-04-03")] == [("a", "2026-04-01")]
        assert [(t["name"], t["promoted_on"]) for t in tracked_on(store, "2026-04-09")] == [
            ("a", "2026-04-01"), ("d", "2026-04-03")]       # a missed date: the latest ranking counts
        assert tracked_on(store, "2026-04-01") == []
        assert [(k["name"], k["rank"], k["promoted_on"]) for k in kept_on(store, "2026-04-03")] == [
            ("a", 1, "2026-04-01"), ("d", 2, "2026-04-03")]
        assert latest_ranked_date(store) == "2026-04-03"
        add_result(store, "2026-04-01", "a", "BTC-USDT", 0.4, sharpe=1.5)
        assert [(r["symbol"], r["sharpe"]) for r in backtest_at(store, "2026-04-01", "a", 1)] == [("BTC-USDT", 1.5)]


def test_a_date_is_replaced_as_a_whole(db_url):
    with open_store(db_url) as store:
        assert replace_forward_rows(store, "2026-04-02", [_row("2026-04-02", "a"), _row("2026-04-02", "b")]) == 2
        replace_forward_rows(store, "2026-04-03", [_row("2026-04-03", "a", n=2)])
        # A re-run that tracks fewer versions leaves no stale row of that date, and no other date changes.
        replace_forward_rows(store, "2026-04-02", [_row("2026-04-02", "a", n=3)])
        rows = forward_rows_until(store, "2026-04-03")
        assert [(r["run_date"], r["strategy"], r["n_bars"]) for r in rows] == [("2026-04-02", "a", 3),
                                                                               ("2026-04-03", "a", 2)]
        assert forward_rows_until(store, "2026-04-04") == []          # nobody tracked that day
        with pytest.raises(ValueError, match="another run date"):
            replace_forward_rows(store, "2026-04-02", [_row("2026-04-03", "a")])

        signal = {"run_date": "2026-04-02", "strategy": "a", "version": 1, "symbol": "BTC-USDT", "timeframe": "1H",
                  "rank": 1, "for_bar": "2026-04-02T00:00:00+00:00", "position": -0.5, "promoted_on": "2026-04-01",
                  "code_hash": "h", "synthetic": 1, "created_at": utc_now()}
        replace_signals(store, "2026-04-02", [signal, {**signal, "strategy": "b", "rank": 2}])
        replace_signals(store, "2026-04-02", [signal])
        assert [(r["strategy"], r["position"]) for r in signals_on(store, "2026-04-02")] == [("a", -0.5)]
        assert latest_signals_date(store) == "2026-04-02"
