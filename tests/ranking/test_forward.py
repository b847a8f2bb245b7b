"""The forward record in the ranking: summaries, the blend rule, contradictions and vetoes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest.metrics import max_drawdown
from blofin_pipeline.ranking.forward import (
    FORWARD_HALF_WEIGHT_DAYS,
    ForwardSummary,
    blend,
    combine_probabilities,
    contradictions,
    forward_weight,
    summarize_rows,
)
from blofin_pipeline.ranking.ranker import RANKER_REASON, rank_items


def forward_rows(item: str, returns_by_symbol: dict[str, list[list[float]]], expected: float | None,
                 start: str = "2026-04-02") -> list[dict]:
    """forward_returns rows: one per symbol and day, hourly bars of the given returns."""
    name, version = item.split("@")
    rows = []
    for symbol, days in returns_by_symbol.items():
        for d, returns in enumerate(days):
            day = pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=d)
            ts = [int((day + pd.Timedelta(hours=h)).value // 1_000_000) for h in range(len(returns))]
            bars = [[t, 100.0, 1.0, r] for t, r in zip(ts, returns)]
            rows.append({"run_date": (day + pd.Timedelta(days=1)).strftime("%Y-%m-%d"), "strategy": name,
                         "version": int(version), "symbol": symbol, "timeframe": "1H", "promoted_on": "2026-04-01",
                         "code_hash": "abc", "n_bars": len(bars), "day_return": None, "expected_sharpe": expected,
                         "bars": json.dumps(bars), "synthetic": 1})
    return rows


def summary(item: str = "a@1", days: int = 10, value: float | None = 0.5, decay_p: float | None = 0.5,
            expected: float | None = 1.0) -> ForwardSummary:
    return ForwardSummary(item=item, promoted_on="2026-04-01", code_hash="h", days=days, first_date="2026-04-02",
                          last_date="2026-04-11", symbols=("BTC-USDT",), n_bars=24 * days,
                          metrics={"score": value, "sharpe": value}, worst_drawdown=-0.1, psr=0.6,
                          expected_sharpe=expected, decay_p=decay_p, synthetic=True)


def test_weight_grows_with_the_record():
    assert forward_weight(0) == 0.0
    assert forward_weight(FORWARD_HALF_WEIGHT_DAYS) == pytest.approx(0.5)
    assert forward_weight(3 * FORWARD_HALF_WEIGHT_DAYS) == pytest.approx(0.75)


def test_probabilities_combine_by_their_mean_z_score():
    assert combine_probabilities([0.5, 0.5]) == pytest.approx(0.5)
    assert combine_probabilities([0.01, 0.01, None, float("nan")]) == pytest.approx(0.01)
    assert combine_probabilities([0.0, 1.0]) == pytest.approx(0.5, abs=1e-5)     # clipped, finite
    assert combine_probabilities([]) is None


def test_blend_weights_the_forward_value_by_its_length():
    forward = {"a@1": summary(days=FORWARD_HALF_WEIGHT_DAYS, value=-1.0), "b@1": summary("b@1", value=None)}
    values, notes = blend({"a@1": 1.0, "b@1": 0.3, "c@1": 0.2, "d@1": None}, forward, "score")
    assert values == {"a@1": pytest.approx(0.0), "b@1": 0.3, "c@1": 0.2, "d@1": None}
    assert "blended with forward -1 over 30 day(s) at weight 0.50" in notes["a@1"]
    assert "backtest only" in notes["b@1"] and "c@1" not in notes


def test_a_contradicted_record_is_vetoed_and_its_place_goes_to_the_next():
    forward = {"a@1": summary(decay_p=0.001), "b@1": summary("b@1", decay_p=0.3)}
    vetoed = contradictions(forward)
    assert list(vetoed) == ["a@1"] and "forward record contradicts its backtest" in vetoed["a@1"]
    decisions = {d.item: d for d in rank_items({"a@1": 0.9, "b@1": 0.5, "c@1": 0.1}, metric="score", count=2,
                                               notes={"a@1": "blended"}, vetoed=vetoed)}
    assert decisions["a@1"].rank == 1 and decisions["a@1"].decision == "archived"
    assert "(0.9: blended) within top 2; archived: forward record contradicts" in decisions["a@1"].reason
    assert decisions["c@1"].decision == "kept" and "kept in the place of a vetoed item" in decisions["c@1"].reason
    assert all(RANKER_REASON.match(d.reason) for d in decisions.values())  # re-runs recognise them


def test_without_forward_records_the_ranking_is_unchanged():
    plain = rank_items({"a@1": 0.9, "b@1": 0.5, "c@1": 0.1}, metric="score", count=2)
    assert [d.reason for d in plain] == ["rank 1 of 3 by score (0.9) within top 2",
                                         "rank 2 of 3 by score (0.5) within top 2",
                                         "rank 3 of 3 by score (0.1) below top 2"]


def test_summary_of_a_flat_record_against_a_great_backtest_is_decayed():
    rows = forward_rows("peek@1", {"BTC-USDT": [[0.0] * 24] * 2, "ETH-USDT": [[0.0] * 24] * 2}, expected=60.0)
    s = summarize_rows(rows)["peek@1"]
    assert (s.days, s.n_bars, s.symbols) == (2, 96, ("BTC-USDT", "ETH-USDT"))
    assert s.metrics["total_return"] == 0 and s.decayed and s.decay_p < 1e-4
    assert "forward Sharpe n/a over 2 day(s) against 60 expected" in s.contradiction()
    assert s.synthetic and s.equity[0][1] == 1.0 and s.equity[-1][1] == 1.0


def test_summary_means_over_symbols_and_worst_drawdown():
    rng = np.random.default_rng(1)
    up = list(rng.normal(0.002, 0.01, 24))
    down = list(rng.normal(-0.002, 0.01, 24))
    s = summarize_rows(forward_rows("x@2", {"A": [up], "B": [down]}, expected=0.0))["x@2"]
    total = [float(np.prod(1 + np.array(r)) - 1) for r in (up, down)]
    assert s.metrics["total_return"] == pytest.approx(np.mean(total))
    assert not s.decayed and s.to_dict()["forward_return"] == pytest.approx(np.mean(total))
    assert s.worst_drawdown == pytest.approx(min(max_drawdown(up), max_drawdown(down)))
