"""The forward record's pure functions: which bars, decided from what, returns after costs, decay."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.backtest.forward import (
    MIN_DECAY_BARS,
    anchor_of,
    bars_to_rows,
    decay_probability,
    decided_positions,
    forward_day,
    forward_span,
    next_run_date,
    record_metrics,
    rows_to_bars,
    trade_count,
)
from blofin_pipeline.costs import Costs
from tests.backtest.helpers import make_candles, random_walk

COSTS = Costs(fee=0.0006, slippage=0.0001, timeframe="1H")


def momentum(candles: pd.DataFrame) -> pd.Series:
    """Causal: long after an up bar, short after a down bar."""
    return np.sign(candles["close"].diff()).fillna(0.0)


def peek(candles: pd.DataFrame) -> pd.Series:
    """Looks one bar ahead: the perfect trader on a full frame, nothing at a prefix's last bar."""
    return np.sign(candles["close"].shift(-1) - candles["close"]).fillna(0.0)


@pytest.fixture
def candles() -> pd.DataFrame:
    return make_candles(random_walk(24 * 5, seed=3))   # five days of hourly bars from 2024-01-01


def test_span_anchor_and_next_date():
    end = pd.Timestamp("2026-04-10", tz="UTC")
    assert forward_span(end) == (pd.Timestamp("2026-04-09", tz="UTC"), end)
    assert next_run_date("2026-04-30") == "2026-05-01"
    # Promoted three days before: the scoring window of that day, whichever date asks.
    assert anchor_of(end, "2026-04-10", "2026-04-07", 20) == pd.Timestamp("2026-03-18", tz="UTC")
    assert anchor_of(end + pd.Timedelta(days=1), "2026-04-11", "2026-04-07", 20) == pd.Timestamp("2026-03-18", tz="UTC")


def test_positions_are_decided_from_data_up_to_each_bar_only(candles):
    # A causal signal decides the same on a prefix as on the whole frame ...
    assert np.array_equal(decided_positions(momentum, candles, 10), momentum(candles).to_numpy()[10:])
    # ... a peeking one does not: at a prefix's last bar there is no next close to peek at.
    assert peek(candles).iloc[10:].abs().sum() > 50
    assert not decided_positions(peek, candles, 10).any()
    with pytest.raises(ValueError):
        decided_positions(momentum, candles, len(candles))


def test_a_day_is_the_bars_since_the_previous_run_with_returns_after_costs(candles):
    span_start = pd.Timestamp("2024-01-04", tz="UTC")
    day = forward_day(momentum, candles.loc[:"2024-01-04 23:00"], span_start, COSTS, entry=False)
    assert len(day) == 24 and day.index[0] == span_start and day.index[-1] == pd.Timestamp("2024-01-04 23:00", tz="UTC")
    frame = candles.loc["2024-01-03 23:00":"2024-01-04 23:00"]
    direct = run_backtest(frame, momentum(candles).loc[frame.index], COSTS.fee, COSTS.slippage, timeframe="1H")
    assert np.array_equal(day["return"].to_numpy(), direct.returns.to_numpy()[1:])
    entered = forward_day(momentum, candles.loc[:"2024-01-04 23:00"], span_start, COSTS, entry=True)
    assert len(entered) == 25 and entered.index[0] == pd.Timestamp("2024-01-03 23:00", tz="UTC")
    assert forward_day(momentum, candles.loc[:"2024-01-03 23:00"], span_start, COSTS, entry=False) is None


def test_consecutive_days_chain_into_exactly_one_backtest(candles):
    days = [forward_day(momentum, candles.loc[: f"2024-01-0{d} 23:00"], pd.Timestamp(f"2024-01-0{d}", tz="UTC"),
                        COSTS, entry=d == 2) for d in (2, 3, 4, 5)]
    record = pd.concat(days)
    frame = candles.loc[record.index]
    direct = run_backtest(frame, momentum(candles).loc[record.index], COSTS.fee, COSTS.slippage, timeframe="1H")
    assert np.array_equal(record["return"].to_numpy(), direct.returns.to_numpy())
    metrics = record_metrics(record, "1H", expected_sharpe=None)
    for key in ("total_return", "sharpe", "sortino", "max_drawdown", "calmar", "n_trades", "exposure"):
        assert metrics[key] == pytest.approx(direct.metrics[key], rel=1e-9, abs=1e-12), key


def test_stored_bars_round_trip(candles):
    day = forward_day(momentum, candles, pd.Timestamp("2024-01-05", tz="UTC"), COSTS, entry=True)
    rows = bars_to_rows(day)
    assert rows[0][0] == int(pd.Timestamp("2024-01-04 23:00", tz="UTC").value // 1_000_000)
    back = rows_to_bars(rows + rows[-1:])  # a repeated bar counts once
    assert back.index.equals(day.index) and np.array_equal(back.to_numpy(), day.to_numpy())


def test_trade_count_counts_runs_of_one_sign():
    assert trade_count(np.array([0, 1, 1, 0, -1, 1, 1, 0, 0.5])) == 4
    assert trade_count(np.array([1.0, 0.5, 1.0])) == 1
    assert trade_count(np.zeros(5)) == 0


def test_decay_probability_flags_a_record_far_below_its_expectation():
    rng = np.random.default_rng(7)
    ppy = 24 * 365
    flat = np.zeros(48)
    assert decay_probability(flat, 40.0, ppy) < 0.01            # promised Sharpe 40, delivered nothing
    assert decay_probability(flat, 0.0, ppy) == pytest.approx(0.5)
    honest = rng.normal(0.001, 0.01, 24 * 20)                   # about the Sharpe it promised
    promised = float(np.mean(honest) / np.std(honest, ddof=1) * math.sqrt(ppy))
    assert decay_probability(honest, promised, ppy) == pytest.approx(0.5, abs=0.05)
    assert math.isnan(decay_probability(flat[: MIN_DECAY_BARS - 1], 40.0, ppy))
    assert math.isnan(decay_probability(flat, None, ppy))


def test_record_metrics_of_a_record_that_never_traded(candles):
    bars = pd.DataFrame({"close": candles["close"], "position": 0.0, "return": 0.0}, index=candles.index)
    metrics = record_metrics(bars, "1H", expected_sharpe=30.0)
    assert metrics["total_return"] == 0 and metrics["n_trades"] == 0 and metrics["max_drawdown"] == 0
    assert math.isnan(metrics["psr"]) and metrics["decay_p"] < 0.01
    assert metrics["score"] == 0.0   # no Sharpe, no Calmar, no evidence: neither good nor bad
