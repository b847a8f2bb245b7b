"""The building-block rules: hand-made candle tables with the positions worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.strategies import signals
from tests.strategies._candles import make_candles


def _bools(values) -> pd.Series:
    return pd.Series(values, dtype=object)


def test_hold_positions_enters_holds_and_exits_on_the_matching_side():
    long_entry = _bools([False, True, False, False, False, False, np.nan])
    short_entry = _bools([False, False, False, False, True, False, False])
    long_exit = _bools([False, False, False, True, False, False, False])
    short_exit = _bools([False, True, False, False, False, True, False])
    # bar 1 long; 2 hold; 3 long exit; 4 short; 5 short exit; 6 NaN entry counts as no entry
    got = signals.hold_positions(long_entry, short_entry, long_exit, short_exit)
    assert got.tolist() == [0.0, 1.0, 1.0, 0.0, -1.0, 0.0, 0.0]


def test_finish_positions_applies_filter_direction_warm_up_and_bounds():
    signal = pd.Series([np.nan, 1.0, -1.0, 0.5, -0.5, 2.0])
    allow = pd.Series([False, True, False, True, True, True])
    assert signals.finish_positions(signal).tolist() == [0.0, 1.0, -1.0, 0.5, -0.5, 1.0]
    assert signals.finish_positions(signal, allow).tolist() == [0.0, 1.0, 0.0, 0.5, -0.5, 1.0]
    assert signals.finish_positions(signal, allow, long_only=True).tolist() == [0.0, 1.0, 0.0, 0.5, 0.0, 1.0]


def test_donchian_channel_breakout_exits_on_the_shorter_channel():
    high = [11, 11, 11, 11, 12.5, 12, 11, 11]
    low = [9, 9, 9, 9, 11, 11, 10.5, 9.5]
    close = [10, 10, 10, 10, 12, 11.5, 10.8, 10]
    candles = make_candles(close, high=high, low=low)
    # n = 4, exit channel max(2, int(4 * 0.5)) = 2 bars.
    # bar 4: close 12 > prior 4-bar high 11 -> long; bar 5: exit low (bars 3-4) 9 -> hold;
    # bar 6: exit low (bars 4-5) 11 > 10.8 -> flat; bar 7: prior 4-bar low 9 < 10 -> flat.
    got = signals.donchian_channel_breakout(candles, 4, 0.5)
    assert got.isna().tolist() == [True] * 4 + [False] * 4
    assert got.iloc[4:].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_atr_expansion_follows_a_big_move_for_hold_bars():
    close = [10, 10.1, 10, 10.1, 10, 12, 12, 12, 12]
    candles = make_candles(close, high=close, low=close)
    got = signals.atr_expansion(candles, 2, 2.0, 2)
    # True ranges are the close-to-close moves (0.1); the jump of 2 at bar 5 is > 2 ATRs:
    # long on bars 5 and 6 (hold 2), flat after.
    assert got.iloc[5:].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert got.iloc[2:5].tolist() == [0.0, 0.0, 0.0]


def test_filters_are_booleans_false_in_the_warm_up():
    candles = make_candles(list(np.linspace(10, 20, 30)), volume=list(np.linspace(1, 3, 30)))
    assert signals.trending_filter(candles, 10, 0.5).iloc[10:].all()
    assert not signals.trending_filter(candles, 10, 0.5).iloc[:10].any()
    assert not signals.ranging_filter(candles, 10, 0.5).any()
    assert signals.volume_filter(candles, 10, 1.0).iloc[10:].all()     # rising volume: above its mean
    assert signals.calm_filter(candles, 5, 0.9).dtype == bool


def test_static_check_admits_the_public_rules_and_indicators_only():
    from blofin_pipeline.strategies.safety import static_check

    header = "from blofin_pipeline.strategies import Strategy\n"
    assert static_check(header + "from blofin_pipeline.strategies.signals import finish_positions, hold_positions\n"
                        "from blofin_pipeline.strategies.indicators import atr, rsi\n") == []
    for module, name in (("signals", "np"), ("signals", "rsi"), ("indicators", "pd")):
        reasons = static_check(header + f"from blofin_pipeline.strategies.{module} import {name}\n")
        assert any(f"import of {name!r}" in r for r in reasons), (module, name, reasons)


def _finish_reference(signal, allow=None, *, long_only=False):
    """finish_positions as pandas operations (its general path, and the code before the array path)."""
    if allow is not None:
        signal = signal.where(allow | signal.isna(), 0.0)
    if long_only:
        signal = signal.clip(lower=0.0)
    return signal.fillna(0.0).clip(-1.0, 1.0)


@pytest.mark.parametrize("long_only", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_finish_positions_on_arrays_equals_the_pandas_operations(seed, long_only):
    rng = np.random.default_rng(seed)
    n = 500
    index = pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC", name="ts")
    values = rng.normal(0, 1.5, n)
    values[rng.random(n) < 0.1] = np.nan
    values[rng.random(n) < 0.02] = np.inf
    values[rng.random(n) < 0.02] = -np.inf
    signal = pd.Series(values, index=index, name="sig")
    allow = pd.Series(rng.random(n) < 0.6, index=index)
    for a in (None, allow, pd.Series(allow.to_numpy(), index=index.copy())):
        got = signals.finish_positions(signal, a, long_only=long_only)
        want = _finish_reference(signal, a, long_only=long_only)
        pd.testing.assert_series_equal(got, want)
    # not the common case (an allow on other bars, an object filter): the pandas operations, aligned
    shifted = pd.Series(allow.to_numpy()[:-10], index=index[10:])
    with_nan = pd.Series(np.where(allow, True, None), index=index, dtype=object)
    for a in (shifted, with_nan):
        pd.testing.assert_series_equal(signals.finish_positions(signal, a, long_only=long_only),
                                       _finish_reference(signal, a, long_only=long_only))


def _hold_reference(long_entry, short_entry, long_exit, short_exit):
    """hold_positions as the state machine it is, bar by bar (the code before the array form)."""
    flags = [s.fillna(False).to_numpy(dtype=bool) for s in (long_entry, short_entry, long_exit, short_exit)]
    out, current = [], 0.0
    for el, es, ll, ls in zip(*flags):
        if el:
            current = 1.0
        elif es:
            current = -1.0
        elif current > 0.0 and ll:
            current = 0.0
        elif current < 0.0 and ls:
            current = 0.0
        out.append(current)
    return pd.Series(out, index=long_entry.index, dtype="float64")


@pytest.mark.parametrize("seed", range(8))
def test_hold_positions_equals_the_bar_by_bar_state_machine(seed):
    rng = np.random.default_rng(seed)
    n = 400
    rate = [0.01, 0.05, 0.3][seed % 3]   # sparse to dense events, entries and exits on the same bar
    flags = [pd.Series(rng.random(n) < rate) for _ in range(4)]
    flags[0] = flags[0].astype(object).where(rng.random(n) > 0.05)   # NaN entries count as none
    pd.testing.assert_series_equal(signals.hold_positions(*flags), _hold_reference(*flags))


def test_volume_spike_follow_equals_its_zscore_definition():
    from blofin_pipeline.strategies.indicators import log_volume, zscore

    candles = make_candles(list(100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 300))))
    candles["volume"] = np.random.default_rng(4).lognormal(3, 1, 300)
    got = signals.volume_spike_follow(candles, 20, 1.0, 4)
    z = zscore(log_volume(candles["volume"]), 20)
    entries = pd.Series(np.where(z > 1.0, np.sign(candles["close"] - candles["open"]), np.nan), index=candles.index)
    full_window = log_volume(candles["volume"]).rolling(20, min_periods=20).std().notna()
    want = entries.ffill(limit=3).fillna(0.0).where(full_window)
    pd.testing.assert_series_equal(got, want, check_names=False)
