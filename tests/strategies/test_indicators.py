"""The shared indicators: hand-worked values, the edge cases each caller relies on, causality."""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.market.sample import generate_candles
from blofin_pipeline.strategies import indicators as ind
from tests.strategies._candles import make_candles


def _close(values) -> pd.Series:
    return make_candles(values)["close"]


def test_sma_and_ema_warm_up_then_follow_the_textbook_recursions():
    close = _close([10, 10, 10, 13, 7])
    assert ind.sma(close, 3).tolist()[2:] == pytest.approx([10.0, 11.0, 10.0])
    assert ind.sma(close, 3).isna().tolist()[:2] == [True, True]
    # span 3 -> alpha 1/2, seeded with the first close: 10, 10, 10, 11.5, 9.25
    assert ind.ema(close, 3).tolist()[2:] == pytest.approx([10.0, 11.5, 9.25])
    assert ind.ema(close, 3).isna().sum() == 2
    assert ind.ema(close, 3, min_periods=0).iloc[0] == 10.0


def test_rsi_is_100_without_losses_and_flat_windows_are_nan_or_the_given_value():
    rising = _close([1, 2, 3, 4, 5, 6])
    assert ind.rsi(rising, 3).iloc[-1] == 100.0
    flat = _close([5.0] * 6)
    assert np.isnan(ind.rsi(flat, 3).iloc[-1])
    assert ind.rsi(flat, 3, flat=100.0).iloc[-1] == 100.0
    assert ind.rsi(flat, 3, flat=100.0).isna().sum() == 3       # warm-up stays NaN
    zigzag = _close([10, 11, 10, 11, 10, 11, 10, 12, 9, 10])
    gain, loss = ind.average_gain_loss(zigzag, 3)
    expected = 100.0 - 100.0 / (1.0 + gain / loss)
    pd.testing.assert_series_equal(ind.rsi(zigzag, 3), expected)
    # The centred form is the same oscillator on [-1, 1], 0 on a flat window.
    assert ind.centred_rsi(zigzag, 3).dropna().to_numpy() == pytest.approx(
        (ind.rsi(zigzag, 3) / 50.0 - 1.0).dropna().to_numpy())
    assert ind.centred_rsi(flat, 3).iloc[-1] == 0.0


def test_zscore_is_nan_where_the_window_does_not_move():
    close = _close([1.0, 1.0, 1.0, 2.0, 3.0])
    z = ind.zscore(close, 3, ddof=0)
    assert np.isnan(z.iloc[2])                                  # std 0
    assert z.iloc[4] == pytest.approx((3.0 - 2.0) / np.std([1.0, 2.0, 3.0]))


def test_true_range_and_atr():
    candles = make_candles([10, 11, 9], high=[10.5, 12, 10], low=[9.5, 10.5, 8])
    high, low, close = candles["high"], candles["low"], candles["close"]
    # bar 1: max(1.5, |12-10|, |10.5-10|) = 2; bar 2: max(2, |10-11|, |8-11|) = 3
    assert ind.true_range(high, low, close).tolist()[1:] == [2.0, 3.0]
    assert np.isnan(ind.true_range(high, low, close).iloc[0])
    assert ind.true_range(high, low, close, from_first_bar=True).iloc[0] == 1.0
    # Wilder over 2 bars (alpha 1/2) seeded with the first true range
    assert ind.atr(high, low, close, 2).iloc[-1] == pytest.approx(2.5)
    assert ind.atr(high, low, close, 2, from_first_bar=True).iloc[-1] == pytest.approx(((1.0 + 2.0) / 2 + 3.0) / 2)


def test_donchian_channel_excludes_the_current_bar():
    candles = make_candles([10, 10, 11.5], high=[11, 11, 12], low=[9, 9, 10])
    lower, upper = ind.donchian_channel(candles["high"], candles["low"], 2)
    assert (lower.iloc[2], upper.iloc[2]) == (9.0, 11.0)
    assert upper.isna().tolist() == [True, True, False]


def test_bollinger_and_keltner_bands_are_symmetric_around_the_sma():
    candles = generate_candles("BTC-USDT", "1H", pd.Timestamp("2024-01-01", tz="UTC"),
                               pd.Timestamp("2024-01-05", tz="UTC"))
    close = candles["close"]
    lower, mid, upper = ind.bollinger_bands(close, 20, 2.0)
    pd.testing.assert_series_equal(mid, ind.sma(close, 20))
    assert np.allclose((upper - mid).dropna(), (mid - lower).dropna())
    pct_b = ind.bollinger_percent_b(close, 20, 2.0)
    assert np.allclose(pct_b.dropna(), ((close - lower) / (upper - lower)).dropna())
    k_lower, k_mid, k_upper = ind.keltner_channel(candles["high"], candles["low"], close, 20, 1.5)
    pd.testing.assert_series_equal(k_mid, mid)
    assert np.allclose((k_upper - k_mid).dropna(), (k_mid - k_lower).dropna())


def test_efficiency_ratio_of_a_line_is_one_and_a_flat_window_is_the_given_value():
    line = pd.Series(np.arange(50, dtype=float))
    assert ind.efficiency_ratio(line, 10).iloc[-1] == pytest.approx(1.0)
    flat = pd.Series(np.full(50, 3.0))
    assert ind.efficiency_ratio(flat, 10).iloc[-1] == 0.0
    assert np.isnan(ind.efficiency_ratio(flat, 10, flat=np.nan).iloc[-1])


def test_obv_vwap_roc_and_log_helpers():
    candles = make_candles([10, 11, 11, 10], high=[10, 12, 11, 10], low=[10, 10, 11, 10], volume=[5, 2, 3, 4])
    close, volume = candles["close"], candles["volume"]
    assert ind.obv(close, volume).tolist() == [0.0, 2.0, 2.0, -2.0]
    vwap = ind.rolling_vwap(candles["high"], candles["low"], close, volume, 2)
    assert vwap.iloc[1] == pytest.approx((10 * 5 + 11 * 2) / 7)
    assert ind.roc(close, 2).iloc[2] == pytest.approx(0.1)
    assert ind.log_momentum(close, 3).iloc[3] == 0.0
    assert np.isnan(ind.log_volume(pd.Series([0.0, 1.0])).iloc[0])


def _calls(frame: pd.DataFrame) -> dict[str, pd.Series]:
    h, lo, c, v = frame["high"], frame["low"], frame["close"], frame["volume"]
    return {
        "sma": ind.sma(c, 5), "ema": ind.ema(c, 5), "wilder": ind.wilder(c, 5), "rolling_std": ind.rolling_std(c, 5),
        "zscore": ind.zscore(c, 5), "roc": ind.roc(c, 3), "log_returns": ind.log_returns(c),
        "log_momentum": ind.log_momentum(c, 3), "realised_volatility": ind.realised_volatility(c, 5),
        "average_gain_loss": ind.average_gain_loss(c, 5)[1], "rsi": ind.rsi(c, 5), "centred_rsi": ind.centred_rsi(c, 5),
        "macd_line": ind.macd_line(c, 3, 6), "bollinger_bands": ind.bollinger_bands(c, 5, 2.0)[2],
        "bollinger_percent_b": ind.bollinger_percent_b(c, 5, 2.0),
        "donchian_channel": ind.donchian_channel(h, lo, 5)[1], "true_range": ind.true_range(h, lo, c),
        "atr": ind.atr(h, lo, c, 5, from_first_bar=True), "keltner_channel": ind.keltner_channel(h, lo, c, 5, 1.0)[0],
        "obv": ind.obv(c, v), "rolling_vwap": ind.rolling_vwap(h, lo, c, v, 5), "log_volume": ind.log_volume(v),
        "efficiency_ratio": ind.efficiency_ratio(c, 5),
    }


def test_every_indicator_is_causal_and_documented():
    candles = generate_candles("ETH-USDT", "1H", pd.Timestamp("2024-01-01", tz="UTC"),
                               pd.Timestamp("2024-01-04", tz="UTC"))
    full = _calls(candles)
    assert set(full) == set(ind.__all__)
    for cut in (3, 10, 40, len(candles) - 1):
        for name, series in _calls(candles.iloc[: cut + 1]).items():
            assert np.array_equal(series.to_numpy(), full[name].iloc[: cut + 1].to_numpy(), equal_nan=True), (name, cut)
    for name in ind.__all__:
        doc = inspect.getdoc(getattr(ind, name))
        assert doc and doc.splitlines()[0].strip(), name
