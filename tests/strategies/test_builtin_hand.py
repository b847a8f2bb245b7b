"""Each built-in on a small hand-made candle table with positions worked out by hand.

The derivations are in the comments (freqtrade test_backtest_detail style); they use
the indicator definitions, not the strategy code.
"""
from __future__ import annotations

import math

import numpy as np

from blofin_pipeline.strategies import builtin_strategies
from tests.strategies._candles import make_candles


def positions(name: str, candles, **params) -> list[float]:
    cls = builtin_strategies()[name]
    return cls(params).signals(candles).tolist()


def test_ema_cross():
    # EMA span 2 (alpha 2/3) and span 3 (alpha 1/2), seeded with the first close:
    # fast: 10, 10, 10, 12, 8.667, 7.556, 8.519; slow: 10, 10, 10, 11.5, 9.25, 8.125, 8.5625
    # fast needs 2 bars, slow 3: bars 0-1 flat; bar 2 equal -> 0.
    candles = make_candles([10, 10, 10, 13, 7, 7, 9])
    assert positions("ema_cross", candles, fast=2, slow=3) == [0, 0, 0, 1, -1, -1, -1]


def test_macd_trend():
    # MACD = fast - slow above: bar 2: 0, 3: 0.5, 4: -0.5833, 5: -0.5694, 6: -0.0440
    # signal EMA span 2 over MACD (needs 2 values): 3: 0.3333, 4: -0.2778, 5: -0.4722,
    # 6: -0.1867 -> MACD - signal: +, -, -, + (bar 6 differs from the EMA cross).
    candles = make_candles([10, 10, 10, 13, 7, 7, 9])
    got = positions("macd_trend", candles, fast=2, slow=3, signal=2)
    assert got == [0, 0, 0, 1, -1, -1, 1]


def test_donchian_breakout_holds_until_opposite_break():
    high = [11, 11, 12, 12, 11, 10, 13]
    low = [9, 9, 10, 10, 8, 8, 9]
    close = [10, 10, 11.5, 11, 8.5, 9, 12.5]
    # bar 2: prior 2 highs max 11 < 11.5 -> long; bar 3: inside [9, 12] -> hold;
    # bar 4: prior lows min 10 > 8.5 -> short; bar 5: inside [8, 12] -> hold;
    # bar 6: prior highs max 11 < 12.5 -> long.
    candles = make_candles(close, open=close, high=high, low=low)
    assert positions("donchian_breakout", candles, window=2) == [0, 0, 1, 1, -1, -1, 1]


def test_keltner_breakout_enters_beyond_band_and_exits_on_mid_cross():
    high = [10.5, 10.5, 10.5, 10.5, 12, 12.2, 12.1, 11.6, 11.5]
    low = [9.5, 9.5, 9.5, 9.5, 10, 11.8, 11.3, 11.4, 10]
    close = [10, 10, 10, 10, 12, 12, 11.5, 11.5, 10]
    # window 3, mult 0.5. TR: -, 1, 1, 1, 2, 0.4, 0.8, 0.2, 1.5 -> ATR valid from bar 3.
    # bar 4: mid 10.667, ATR 1.333, upper 11.333 < 12 -> long
    # bar 5: mid 11.333, ATR 1.133, upper 11.9 < 12 -> long
    # bar 6: mid 11.833 > 11.5: crossed below mid -> flat (lower 11.3 not broken)
    # bar 7: mid 11.667, still below, lower 11.433 < 11.5 -> stays flat
    # bar 8: mid 11, ATR 0.833, lower 10.583 > 10 -> short
    candles = make_candles(close, open=close, high=high, low=low)
    got = positions("keltner_breakout", candles, window=3, mult=0.5)
    assert got == [0, 0, 0, 0, 1, 1, 0, 0, -1]


def test_bollinger_reversion():
    close = [10, 10, 10, 10, 7, 8, 10.5, 10, 9.7]
    # window 3, population std, k 1.3. bars 2-3: std 0 -> no z.
    # bar 4: [10,10,7] z = -2/sqrt(2) = -1.414 -> long
    # bar 5: [10,7,8] z = -0.267, still below the mean -> hold long
    # bar 6: [7,8,10.5] z = 2/sqrt(13/6) = 1.359 -> short
    # bar 7: [8,10.5,10] z = +0.463, same side -> hold short
    # bar 8: [10.5,10,9.7] z = -1.111: crossed the mean, not beyond -1.3 -> flat
    candles = make_candles(close)
    got = positions("bollinger_reversion", candles, window=3, k=1.3)
    assert got == [0, 0, 0, 0, 1, 1, -1, -1, 0]


def test_rsi_reversion_wilder():
    close = [10, 11, 12, 13, 12, 11, 10, 9]
    # period 2 (alpha 1/2), needs 2 changes. avg gain: -, 1, 1, 1, .5, .25, .125, .0625
    # avg loss: -, 0, 0, 0, .5, .75, .875, .9375
    # RSI: -, -, 100, 100, 50, 25, 12.5, 6.25 -> short above 70, long below 30
    candles = make_candles(close)
    got = positions("rsi_reversion", candles, period=2, lower=30.0, upper=70.0)
    assert got == [0, 0, -1, -1, 0, 1, 1, 1]


def test_zscore_reversion_is_fractional_and_clipped():
    close = [10, 10, 10, 7, 8, 10.5, 9]
    # window 3, entry_z 1.2, position = clip(-z / 1.2)
    # bar 3: z = -sqrt(2) -> 1.18 -> clipped to 1
    # bar 4: [10,7,8] var 14/9, z = -1/sqrt(14) -> 1/sqrt(14)/1.2
    # bar 5: [7,8,10.5] z = 2/sqrt(13/6) = 1.36 -> -1.13 -> clipped to -1
    # bar 6: [8,10.5,9] var 19/18, z = -(1/6)/sqrt(19/18)
    candles = make_candles(close)
    got = positions("zscore_reversion", candles, window=3, entry_z=1.2)
    expected = [0, 0, 0, 1, 1 / math.sqrt(14) / 1.2, -1, (1 / 6) / math.sqrt(19 / 18) / 1.2]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_vwap_reversion():
    close = [10, 10, 12, 9, 9]
    volume = [1, 1, 1, 3, 1]
    # high = low = close, so the typical price is the close. window 2, threshold 5%.
    # bar 1: vwap 10 -> 0; bar 2: vwap 11, +9.1% -> short;
    # bar 3: vwap (12 + 27)/4 = 9.75, -7.7% -> long; bar 4: vwap 9 -> flat
    candles = make_candles(close, volume=volume)
    got = positions("vwap_reversion", candles, window=2, threshold=0.05)
    assert got == [0, 0, -1, 1, 0]


def test_roc_momentum():
    close = [100, 100, 110, 100, 90, 96]
    # window 2: ROC = +10%, 0%, -18.2%, -4% (threshold 5%)
    candles = make_candles(close)
    got = positions("roc_momentum", candles, window=2, threshold=0.05)
    assert got == [0, 0, 1, 0, -1, 0]


def test_tsmom_scales_by_realised_volatility():
    cumulative = [0.0, 0.0, 0.1, 0.0, 0.02, 0.04]  # log prices; returns 0, .1, -.1, .02, .02
    close = [100 * math.exp(c) for c in cumulative]
    # lookback 2, vol over 2 returns (population std = |r1 - r2| / 2), target 0.02
    # bar 2: up 0.1, vol 0.05 -> 0.4; bar 3: 2-bar return 0 -> flat
    # bar 4: 2-bar return -0.08, vol 0.06 -> -1/3; bar 5: +0.04, vol 0 -> capped 1
    candles = make_candles(close)
    got = positions("tsmom", candles, lookback=2, vol_window=2, target_vol=0.02)
    np.testing.assert_allclose(got, [0, 0, 0.4, 0, -1 / 3, 1], rtol=0, atol=1e-9)


def test_vol_breakout_holds_for_hold_bars():
    close = [100, 101, 100, 101, 110, 111, 112, 100]
    # returns: -, .01, -.0099, .01, .0891, .0091, .0090, -.1071; band = 1.5 * std of the
    # 2 previous returns. bar 3: band .0149 > .01 -> no; bar 4: .0891 > .0149 -> long,
    # held on bar 5 (hold 2); bar 6 flat; bar 7: -.107 far beyond a tiny band -> short
    candles = make_candles(close)
    got = positions("vol_breakout", candles, window=2, k=1.5, hold=2)
    assert got == [0, 0, 0, 0, 1, 1, 0, -1]


def test_vol_regime_trend_trades_only_in_calm_regime():
    close = [100, 102, 100, 102, 103, 104, 101, 100.5]
    # short vol = std of 2 returns, long vol = std of 3 returns, trend vs SMA(2)
    # bar 3: short .0198 > long .0187 -> flat (trend up ignored)
    # bar 4: short .0051 < long .0168, close 103 > 102.5 -> long; bar 5 likewise
    # bar 6: short .0193 > long .0182 -> flat
    # bar 7: short .0120 < long .0159, close 100.5 < 100.75 -> short
    candles = make_candles(close)
    got = positions("vol_regime_trend", candles, trend_window=2, short_vol=2,
                    long_vol=3, ratio=1.0)
    assert got == [0, 0, 0, 0, 1, 1, 0, -1]


def test_obv_trend():
    close = [10, 11, 10, 10, 12, 11]
    volume = [5, 2, 3, 4, 1, 6]
    # OBV: 0, 2, -1, -1, 0, -6; SMA(2): -, 1, .5, -1, -.5, -3
    candles = make_candles(close, volume=volume)
    assert positions("obv_trend", candles, window=2) == [0, 1, -1, 0, 1, -1]


def test_volume_spike_follows_the_body():
    open_ = [10, 10, 10, 11, 11, 10.5, 10, 10]
    close = [10, 10, 11, 11, 10.5, 10, 10, 10]
    volume = [1, 1, 5, 1, 1, 3, 1, 9]
    # window 2, k 2: bar 2: 5 > 2*1, body up -> long, held on bar 3 (hold 2), bar 4 flat;
    # bar 5: 3 > 2*1, body down -> short, held on bar 6; bar 7: 9 > 2*2 but no body -> 0
    candles = make_candles(close, open=open_, high=[max(o, c) for o, c in zip(open_, close)],
                           low=[min(o, c) for o, c in zip(open_, close)], volume=volume)
    got = positions("volume_spike", candles, window=2, k=2.0, hold=2)
    assert got == [0, 0, 1, 1, 0, -1, -1, 0]


HAND_TESTED = {
    "ema_cross", "macd_trend", "donchian_breakout", "keltner_breakout",
    "bollinger_reversion", "rsi_reversion", "zscore_reversion", "vwap_reversion",
    "roc_momentum", "tsmom", "vol_breakout", "vol_regime_trend", "obv_trend", "volume_spike",
}


def test_every_builtin_has_a_hand_test():
    assert set(builtin_strategies()) == HAND_TESTED
