"""Lookahead check, in-process (the sandbox runs the same function in its child)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies import builtin_strategies, signal_fn
from blofin_pipeline.strategies.lookahead import (
    LATE_BARS,
    check_lookahead,
    default_min_history,
    sample_cuts,
)
from blofin_pipeline.strategies.testdata import check_candles

CANDLES = check_candles(600)


def causal(candles):
    close = candles["close"]
    return np.sign(close - close.rolling(20).mean()).fillna(0.0)


def test_causal_function_passes_and_late_bars_are_always_checked():
    report = check_lookahead(causal, CANDLES, n_samples=25)
    assert report.ok and report.first_bad_bar is None
    n = len(CANDLES)
    assert len(report.checked_bars) == 25
    assert report.checked_bars[-LATE_BARS:] == list(range(n - 1 - LATE_BARS, n - 1))
    assert min(report.checked_bars) >= default_min_history(n)


@pytest.mark.parametrize("fn", [
    lambda c: np.sign(c["close"].ewm(span=10).mean().diff()).fillna(0.0),
    lambda c: np.sign(c["close"] - c["close"].expanding().mean()),
    lambda c: (c["close"].pct_change().cumsum() > 0).astype(float),
    lambda c: np.sign(c["close"].diff()).ffill().fillna(0.0),
])
def test_other_causal_constructions_pass(fn):
    assert check_lookahead(fn, CANDLES).ok


def test_shift_minus_one_is_caught_at_the_cut_bar():
    report = check_lookahead(
        lambda c: np.sign(c["close"].shift(-1) - c["close"]).fillna(0.0), CANDLES)
    assert not report.ok
    assert report.first_bad_bar == report.cut_bar == min(report.checked_bars)
    assert report.first_bad_ts == str(CANDLES.index[report.first_bad_bar])
    assert f"bar {report.first_bad_bar} " in report.detail and "later bars" in report.detail


@pytest.mark.parametrize("fn, before_cut", [
    # centred 5-bar window at b covers b-2 ... b+2: cutting at t breaks bars t-1 and t
    (lambda c: np.sign(c["close"] - c["close"].rolling(5, center=True).mean()).fillna(0.0), 1),
    # three bars ahead: bars t-2 ... t lose their future close
    (lambda c: np.sign(c["close"].shift(-3) - c["close"]).fillna(0.0), 2),
])
def test_future_windows_are_caught_before_the_cut(fn, before_cut):
    report = check_lookahead(fn, CANDLES)
    assert not report.ok
    assert report.first_bad_bar == min(report.checked_bars) - before_cut


@pytest.mark.parametrize("fn", [
    lambda c: c["close"] / c["close"].max(),
    lambda c: np.sign(c["close"] - c["close"].mean()),
    lambda c: np.sign(c["close"] - c["close"].median()),
    lambda c: np.sign(c["close"] - c["close"].iloc[-1]),
    lambda c: np.sign(c["close"].where(np.arange(len(c)) % 50 == 0).bfill() - c["close"])
    .fillna(0.0),
])
def test_whole_series_statistics_and_bfill_are_caught(fn):
    report = check_lookahead(fn, CANDLES)
    assert not report.ok and report.first_bad_bar is not None
    assert report.first_bad_bar <= report.cut_bar


def test_peeking_only_at_the_very_end_is_caught_by_the_late_cuts():
    def peek_last_bar(candles):
        out = pd.Series(0.0, index=candles.index)
        out.iloc[-2] = float(np.sign(candles["close"].iloc[-1] - candles["close"].iloc[-2]))
        return out

    report = check_lookahead(peek_last_bar, CANDLES, n_samples=LATE_BARS)
    assert not report.ok


def test_non_determinism_is_reported_as_such():
    rng = np.random.default_rng(1)
    report = check_lookahead(lambda c: pd.Series(rng.uniform(-1, 1, len(c)), index=c.index),
                             CANDLES)
    assert not report.ok and report.detail.startswith("non-deterministic")


def test_failure_on_a_prefix_is_reported_with_the_cut():
    def needs_long_history(candles):
        if len(candles) < 500:
            raise ValueError("too short")
        return causal(candles)

    report = check_lookahead(needs_long_history, CANDLES)
    assert not report.ok
    assert "failed on data cut at bar" in report.detail and "too short" in report.detail


def test_too_short_data_is_not_vouched_for():
    report = check_lookahead(causal, CANDLES.iloc[:50], min_history=60)
    assert not report.ok and report.detail.startswith("not checked: 50 bars")
    assert check_lookahead(causal, CANDLES.iloc[:50]).ok  # default history fits short data


def test_failure_on_the_full_data_raises():
    with pytest.raises(StrategyError, match="failed: KeyError"):
        check_lookahead(lambda c: c["nope"], CANDLES)


def test_accepts_class_instance_adapter_and_fn_with_params():
    cls = builtin_strategies()["ema_cross"]
    params = {"fast": 5, "slow": 20}
    assert check_lookahead(cls, CANDLES, params=params).ok
    assert check_lookahead(cls(params), CANDLES).ok
    assert check_lookahead(signal_fn(cls), CANDLES, params=params).ok
    assert check_lookahead(lambda c, p: cls(p).signals(c), CANDLES, params=params).ok


def test_sample_cuts_is_deterministic_sorted_and_in_range():
    cuts = sample_cuts(1000, n_samples=30, seed=3, min_history=100)
    assert cuts == sample_cuts(1000, n_samples=30, seed=3, min_history=100)
    assert cuts != sample_cuts(1000, n_samples=30, seed=4, min_history=100)
    assert cuts == sorted(set(cuts)) and len(cuts) == 30
    assert cuts[0] >= 100 and cuts[-1] == 998
    assert sample_cuts(50, min_history=60) == []
    assert sample_cuts(20, n_samples=100, min_history=5) == list(range(5, 19))


def test_report_to_dict_round_trips_fields():
    data = check_lookahead(causal, CANDLES, n_samples=6).to_dict()
    assert data["ok"] is True and len(data["checked_bars"]) == 6
    assert set(data) == {"ok", "first_bad_bar", "first_bad_ts", "cut_bar", "detail",
                         "checked_bars", "check", "params"}
    assert data["check"] == "sampled" and data["params"] is None
