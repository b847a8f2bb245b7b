from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.backtest.engine import TRADE_COLUMNS, cost_rates, infer_periods_per_year
from blofin_pipeline.exceptions import BacktestError
from tests.backtest.helpers import make_candles, random_walk

FEE = 0.001


def test_hand_made_long_then_short_table():
    # close:      100   110    99    99  108.9
    # position:     1     1     0    -1      0
    candles = make_candles([100.0, 110.0, 99.0, 99.0, 108.9])
    res = run_backtest(candles, pd.Series([1.0, 1.0, 0.0, -1.0, 0.0], index=candles.index), fee=FEE)
    k = 1 - FEE
    expected_equity = np.array([
        k,                            # bar 0: buy 1 unit of equity, pay the fee
        k * 1.1,                      # bar 1: +10 %
        k * 1.1 * 0.9 * k,            # bar 2: -10 % held, then sell
        k * 1.1 * 0.9 * k * k,        # bar 3: flat over the bar, open a short
        k * 1.1 * 0.9 * k * k * 0.9 * k,  # bar 4: price +10 % against the short, cover
    ])
    np.testing.assert_allclose(res.equity.to_numpy(), expected_equity, rtol=1e-13)
    np.testing.assert_allclose(res.returns.to_numpy()[1:], expected_equity[1:] / expected_equity[:-1] - 1,
                               rtol=1e-12)
    assert res.returns.iloc[0] == pytest.approx(-FEE)

    trades = res.trades
    assert list(trades.columns) == TRADE_COLUMNS
    assert list(trades["side"]) == ["long", "short"]
    assert list(trades["bars_held"]) == [2, 1]
    assert list(trades["entry_price"]) == [100.0, 99.0]
    assert list(trades["exit_price"]) == [99.0, 108.9]
    assert list(trades["entry_time"]) == [candles.index[0], candles.index[3]]
    assert list(trades["exit_time"]) == [candles.index[2], candles.index[4]]
    assert trades["return"].to_numpy() == pytest.approx([k * 1.1 * 0.9 * k - 1, k * 0.9 * k - 1], rel=1e-12)
    assert trades["pnl"].iloc[0] == pytest.approx(k * 1.1 * 0.9 * k - 1, rel=1e-12)
    assert not trades["is_open"].any()

    mt = res.metrics
    assert mt["n_trades"] == 2
    assert mt["win_rate"] == 0.0
    assert mt["total_return"] == pytest.approx(expected_equity[-1] - 1, rel=1e-12)
    assert mt["exposure"] == pytest.approx(3 / 5)
    # fees: 4 legs of |1| each, charged on the equity just before each leg
    pre = [1.0, 1.1 * k * 0.9, k * 1.1 * 0.9 * k, k * 1.1 * 0.9 * k * k * 0.9]
    assert mt["fees_paid"] == pytest.approx(FEE * sum(pre), rel=1e-12)
    assert mt["turnover"] == pytest.approx(4 * 8760 / 5)


def test_flip_is_two_legs_and_two_trades():
    candles = make_candles([100.0, 120.0, 90.0, 90.0])
    res = run_backtest(candles, np.array([1.0, -1.0, -1.0, 0.0]), fee=FEE)
    k = 1 - FEE
    # bar 1: +20 % long, close the long (k), open the short (k)
    assert res.equity.iloc[1] == pytest.approx(k * 1.2 * k * k, rel=1e-13)
    # bar 2: -25 % in price is +25 % for the short
    assert res.equity.iloc[-1] == pytest.approx(k * 1.2 * k * k * 1.25 * k, rel=1e-13)
    t = res.trades
    assert list(t["side"]) == ["long", "short"]
    assert t["return"].iloc[0] == pytest.approx(k * 1.2 * k - 1, rel=1e-12)
    assert t["return"].iloc[1] == pytest.approx(k * 1.25 * k - 1, rel=1e-12)
    assert t["exit_time"].iloc[0] == t["entry_time"].iloc[1] == candles.index[1]
    assert res.metrics["win_rate"] == 1.0
    assert res.metrics["profit_factor"] == np.inf


def test_fractional_positions_and_open_trade_marked_to_market():
    candles = make_candles([100.0, 110.0, 121.0, 133.1])
    res = run_backtest(candles, np.array([0.5, 0.25, 0.25, 0.25]), fee=0.0, slippage=0.0)
    expected = 1.0 * (1 + 0.5 * 0.1) * (1 + 0.25 * 0.1) * (1 + 0.25 * 0.1)
    assert res.equity.iloc[-1] == pytest.approx(expected, rel=1e-13)
    t = res.trades
    assert len(t) == 1 and bool(t["is_open"].iloc[0])
    assert t["size"].iloc[0] == 0.5
    assert t["exit_time"].iloc[0] == candles.index[-1]
    assert t["return"].iloc[0] == pytest.approx(expected - 1, rel=1e-12)


def test_position_at_bar_t_earns_next_bar_only():
    candles = make_candles([100.0, 200.0, 100.0])
    # Long decided at bar 1 (after the +100 % move) only earns the -50 % of bar 2.
    res = run_backtest(candles, np.array([0.0, 1.0, 0.0]), fee=0.0)
    assert res.equity.iloc[-1] == pytest.approx(0.5)


def test_slippage_adds_to_fee_in_linear_model():
    close = random_walk(500, seed=3)
    pos = np.sign(np.sin(np.arange(500) / 7.0))
    a = run_backtest(make_candles(close), pos, fee=0.0004, slippage=0.0002)
    b = run_backtest(make_candles(close), pos, fee=0.0006, slippage=0.0)
    assert a.equity.iloc[-1] == pytest.approx(b.equity.iloc[-1], rel=1e-13)
    c = run_backtest(make_candles(close), pos, fee=0.0)
    assert c.equity.iloc[-1] > b.equity.iloc[-1]


def test_initial_equity_scales_equity_pnl_and_fees():
    close = random_walk(300, seed=4)
    pos = (np.arange(300) // 17 % 3 - 1).astype(float)
    a = run_backtest(make_candles(close), pos)
    b = run_backtest(make_candles(close), pos, initial_equity=1000.0)
    np.testing.assert_allclose(b.equity.to_numpy(), 1000 * a.equity.to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(b.trades["pnl"], 1000 * a.trades["pnl"], rtol=1e-10)
    assert b.metrics["fees_paid"] == pytest.approx(1000 * a.metrics["fees_paid"], rel=1e-12)
    assert b.metrics["sharpe"] == pytest.approx(a.metrics["sharpe"], rel=1e-12)


def test_trade_pnl_sums_to_equity_change_without_costs_and_flat_gaps():
    close = random_walk(2000, seed=5)
    rng = np.random.default_rng(5)
    pos = np.repeat(rng.choice([-1.0, 0.0, 1.0], size=100), 20)
    res = run_backtest(make_candles(close), pos, fee=0.0007, slippage=0.0003)
    # Equity only moves inside trades, so trade pnl adds up to the total pnl.
    assert res.trades["pnl"].sum() == pytest.approx(res.equity.iloc[-1] - 1.0, rel=1e-9, abs=1e-12)
    assert res.metrics["n_trades"] == len(res.trades)


def test_metrics_keys_present_and_annualised_with_365_days():
    close = random_walk(24 * 30, seed=6)
    pos = np.ones(close.size)
    res = run_backtest(make_candles(close, "1h"), pos)
    for key in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "win_rate",
                "profit_factor", "n_trades", "exposure", "turnover", "fees_paid", "volatility"):
        assert key in res.metrics
    assert res.periods_per_year == 365 * 24
    r = res.returns.to_numpy()
    assert res.metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(8760), rel=1e-12)
    res_d = run_backtest(make_candles(close, "1h"), pos, timeframe="1D")
    assert res_d.periods_per_year == 365


def test_infer_periods_per_year_from_index_spacing():
    idx = pd.date_range("2024-01-01", periods=10, freq="15min", tz="UTC")
    assert infer_periods_per_year(idx) == 365 * 96
    assert infer_periods_per_year(idx, "4H") == 365 * 6
    with pytest.raises(BacktestError, match="timeframe"):
        infer_periods_per_year(idx, "7X")


@pytest.mark.parametrize("bad, match", [
    ([0.0, np.nan, 0.0], "NaN"),
    ([0.0, 1.5, 0.0], r"\[-1, 1\]"),
    ([0.0, -1.01, 0.0], r"\[-1, 1\]"),
    ([0.0, np.inf, 0.0], "NaN or infinite"),
])
def test_bad_positions_raise(bad, match):
    candles = make_candles([1.0, 2.0, 3.0])
    with pytest.raises(BacktestError, match=match):
        run_backtest(candles, pd.Series(bad, index=candles.index))


def test_misaligned_or_wrong_length_positions_raise():
    candles = make_candles([1.0, 2.0, 3.0])
    shifted = pd.Series([0.0, 1.0, 0.0], index=candles.index + pd.Timedelta("1h"))
    with pytest.raises(BacktestError, match="misaligned"):
        run_backtest(candles, shifted)
    with pytest.raises(BacktestError, match="shape"):
        run_backtest(candles, np.zeros(4))


def test_bad_fee_and_fee_model_raise():
    candles = make_candles([1.0, 2.0, 3.0])
    with pytest.raises(BacktestError, match="fee"):
        run_backtest(candles, np.zeros(3), fee=-0.1)
    with pytest.raises(BacktestError, match="fee_model"):
        run_backtest(candles, np.zeros(3), fee_model="flat")


def test_float_noise_just_outside_range_is_clipped():
    candles = make_candles([100.0, 101.0, 102.0])
    res = run_backtest(candles, np.array([1.0 + 1e-12, 1.0, 0.0]), fee=0.0)
    assert res.positions.max() == 1.0


def test_vectorbt_cost_rates():
    buy, sell = cost_rates(0.001, 0.002, "vectorbt")
    assert buy == pytest.approx(1 - 1 / (1.001 * 1.002))
    assert sell == pytest.approx(1 - 0.999 * 0.998)
    assert cost_rates(0.001, 0.002) == pytest.approx((0.003, 0.003))


@pytest.mark.parametrize("seed", [0, 1])
def test_engine_metrics_equal_the_pinned_metric_functions(seed):
    from blofin_pipeline.backtest import metrics as m

    close = random_walk(3000, seed=seed)
    rng = np.random.default_rng(seed)
    pos = np.repeat(rng.choice([-1.0, -0.3, 0.0, 0.5, 1.0], size=150), 20)
    res = run_backtest(make_candles(close), pos, fee=0.0008, slippage=0.0001)
    r, ppy, mt = res.returns.to_numpy(), res.periods_per_year, res.metrics
    assert mt["total_return"] == pytest.approx(m.total_return(r), rel=1e-10)
    assert mt["cagr"] == pytest.approx(m.cagr(r, ppy), rel=1e-9)
    assert mt["sharpe"] == pytest.approx(m.sharpe_ratio(r, ppy), rel=1e-10)
    assert mt["sortino"] == pytest.approx(m.sortino_ratio(r, ppy), rel=1e-10)
    assert mt["volatility"] == pytest.approx(m.annual_volatility(r, ppy), rel=1e-10)
    assert mt["max_drawdown"] == pytest.approx(m.max_drawdown(r), rel=1e-10)
    assert mt["calmar"] == pytest.approx(m.calmar_ratio(r, ppy), rel=1e-9)
    assert mt["win_rate"] == pytest.approx(m.win_rate(res.trades["return"]))
    assert mt["profit_factor"] == pytest.approx(m.profit_factor(res.trades["pnl"]), rel=1e-10)
    assert mt["exposure"] == pytest.approx(m.exposure(pos))
    assert mt["turnover"] == pytest.approx(m.turnover(pos, ppy), rel=1e-12)


def test_loss_beyond_everything_is_a_wipe_out_not_negative_equity():
    candles = make_candles([100.0, 100.0, 250.0, 200.0, 150.0])
    res = run_backtest(candles, np.array([0.0, -1.0, -1.0, 1.0, 1.0]), fee=0.0)
    assert res.equity.iloc[2] == 0.0
    assert (res.equity >= 0).all() and res.equity.iloc[-1] == 0.0
    assert res.metrics["max_drawdown"] == -1.0


def test_single_candle_is_degenerate_not_an_error():
    res = run_backtest(make_candles([100.0]), np.array([1.0]), fee=0.001)
    assert res.equity.iloc[0] == pytest.approx(0.999)
    assert res.metrics["n_trades"] == 1
    assert np.isnan(res.metrics["sharpe"]) and np.isnan(res.metrics["cagr"])


def test_no_position_means_no_trades_and_flat_equity():
    res = run_backtest(make_candles(random_walk(100)), np.zeros(100))
    assert res.trades.empty and list(res.trades.columns) == TRADE_COLUMNS
    assert (res.equity == 1.0).all()
    assert res.metrics["n_trades"] == 0 and res.metrics["total_return"] == 0.0
    assert np.isnan(res.metrics["sharpe"]) and np.isnan(res.metrics["win_rate"])
    assert res.metrics["max_drawdown"] == 0.0 and res.metrics["exposure"] == 0.0
