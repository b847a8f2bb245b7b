"""Signal and filter rules: the building blocks the offline designer composes strategies from.

A *signal* function returns the target position per bar (a float Series in [-1, 1] on
the candles' index, NaN during the warm-up); a *filter* function returns a boolean Series,
False where no position should be held. `finish_positions` applies a filter and the
direction. Generated strategy files import these functions (the static check admits this
module), so each rule is real code that linters, tests and coverage see. Every rule is
causal: built from `indicators` and trailing windows, the value at bar t uses bars <= t.
The arithmetic is on numpy arrays (`indicators.values_of` ... `series_like`), with the
values of the same rule written in pandas operators: the lookahead gate runs each
composed strategy ~3,000 times, and a pandas operator costs 10-50 times its numpy form.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies.indicators import (
    atr,
    bollinger_bands,
    divide,
    donchian_channel,
    efficiency_ratio,
    ema,
    ffill_limited,
    log_returns,
    log_volume,
    nan_unless,
    obv,
    realised_volatility,
    roc,
    rolling_std,
    rsi,
    series_like,
    shifted,
    sma,
    values_of,
    zscore,
)

__all__ = [
    "hold_positions", "finish_positions",
    "ema_crossover", "sma_crossover", "ma_slope_trend", "rsi_band_reversion", "zscore_band_reversion",
    "bollinger_band_reversion", "donchian_channel_breakout", "bollinger_band_breakout", "atr_expansion",
    "volatility_targeted_trend", "roc_threshold", "tstat_momentum", "volume_spike_follow", "obv_crossover",
    "trending_filter", "ranging_filter", "calm_filter", "volume_filter",
]


def hold_positions(long_entry: pd.Series, short_entry: pd.Series, long_exit: pd.Series,
                   short_exit: pd.Series) -> pd.Series:
    """Stateful entries and exits: enter on an entry, stay until the matching exit."""
    flags = [flag.fillna(False).to_numpy(dtype=bool) for flag in (long_entry, short_entry, long_exit, short_exit)]
    return pd.Series(held_positions(*flags), index=long_entry.index)


def held_positions(enter_long: np.ndarray, enter_short: np.ndarray, leave_long: np.ndarray,
                   leave_short: np.ndarray) -> np.ndarray:
    """`hold_positions` on boolean arrays."""
    # Without a loop: the position at bar i is the direction of the last entry j <= i (a long
    # entry wins a bar with both), unless an exit of that direction came after it, in (j, i].
    bars = np.arange(len(enter_long))
    entered = enter_long | enter_short
    last_entry = np.maximum.accumulate(np.where(entered, bars, -1))
    direction = np.where(enter_long, 1.0, -1.0)[np.maximum(last_entry, 0)]
    last_long_exit = np.maximum.accumulate(np.where(leave_long, bars, -1))
    last_short_exit = np.maximum.accumulate(np.where(leave_short, bars, -1))
    closed = np.where(direction > 0, last_long_exit, last_short_exit) > last_entry
    return np.where((last_entry < 0) | closed, 0.0, direction)


def finish_positions(signal: pd.Series, allow: pd.Series | None = None, *, long_only: bool = False) -> pd.Series:
    """Flat where the filter forbids a position, no shorts when long only, warm-up flat, in [-1, 1]."""
    if _same_frame(signal, allow):  # the common case, on arrays: the lookahead gate runs this ~3,000 times
        values = signal.to_numpy(dtype=np.float64, copy=True)
        if allow is not None:
            values[~allow.to_numpy(dtype=bool) & ~np.isnan(values)] = 0.0
        if long_only:
            np.maximum(values, 0.0, out=values)
        values[np.isnan(values)] = 0.0
        return pd.Series(np.clip(values, -1.0, 1.0), index=signal.index, name=signal.name)
    if allow is not None:
        signal = signal.where(allow | signal.isna(), 0.0)
    if long_only:
        signal = signal.clip(lower=0.0)
    return signal.fillna(0.0).clip(-1.0, 1.0)


def _same_frame(signal: object, allow: object) -> bool:
    """A float Series and a bool Series (or None) on the same index: no alignment to do."""
    return (isinstance(signal, pd.Series) and signal.dtype == np.float64
            and (allow is None or (isinstance(allow, pd.Series) and allow.dtype == np.bool_
                                   and (allow.index is signal.index or allow.index.equals(signal.index)))))


# --- signals ----------------------------------------------------------------------

def _sign_of_difference(a: pd.Series, b: pd.Series) -> pd.Series:
    return series_like(np.sign(values_of(a) - values_of(b)), a, a.name if a.name == b.name else None)


def ema_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast EMA is above the slow EMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    close = candles["close"]
    return _sign_of_difference(ema(close, fast), ema(close, slow))


def sma_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast SMA is above the slow SMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    close = candles["close"]
    return _sign_of_difference(sma(close, fast), sma(close, slow))


def ma_slope_trend(candles: pd.DataFrame, length: int, lag: int) -> pd.Series:
    """Long above a rising SMA, short below a falling one (slope over `lag` bars), else flat."""
    length, lag = int(length), int(lag)
    close = values_of(candles["close"])
    ma = values_of(sma(candles["close"], length))
    before = shifted(ma, lag)
    signal = np.where((close > ma) & (ma > before), 1.0, np.where((close < ma) & (ma < before), -1.0, 0.0))
    return series_like(nan_unless(signal, ~np.isnan(before)), candles)


def rsi_band_reversion(candles: pd.DataFrame, length: int, band: float) -> pd.Series:
    """Long when RSI falls below 50-band, short above 50+band, flat when it crosses 50."""
    strength = values_of(rsi(candles["close"], int(length), flat=100.0))
    band = float(band)
    centre = np.sign(strength - 50.0)
    crossed = centre != shifted(centre, 1)
    signal = held_positions(strength < 50.0 - band, strength > 50.0 + band, crossed, crossed)
    return series_like(nan_unless(signal, ~np.isnan(strength)), candles)


def zscore_band_reversion(candles: pd.DataFrame, length: int, entry_z: float, exit_z: float) -> pd.Series:
    """Short when the close is entry_z sigmas above its rolling mean, long below, flat once |z| < exit_z."""
    length = int(length)
    close = candles["close"]
    z = values_of(zscore(close, length))
    entry = float(entry_z)
    calm = np.abs(z) < float(exit_z)
    signal = held_positions(z < -entry, z > entry, calm, calm)
    return series_like(nan_unless(signal, ~np.isnan(values_of(sma(close, length)))), candles)


def bollinger_band_reversion(candles: pd.DataFrame, length: int, width: float) -> pd.Series:
    """Long below the lower Bollinger band, short above the upper band, exit at the middle."""
    close = values_of(candles["close"])
    lower, mid, upper = (values_of(band) for band in bollinger_bands(candles["close"], int(length), float(width)))
    above_mid = close >= mid
    signal = held_positions(close < lower, close > upper, above_mid, ~above_mid)
    return series_like(nan_unless(signal, ~np.isnan(mid)), candles)


def donchian_channel_breakout(candles: pd.DataFrame, length: int, exit_frac: float) -> pd.Series:
    """Long on a close above the previous n-bar high, short below the n-bar low, exit on the
    opposite side of the shorter (exit_frac * n) channel."""
    length = int(length)
    exit_len = max(2, int(length * float(exit_frac)))
    high, low, close = candles["high"], candles["low"], values_of(candles["close"])
    lower, upper = (values_of(side) for side in donchian_channel(high, low, length))
    exit_lower, exit_upper = (values_of(side) for side in donchian_channel(high, low, exit_len))
    signal = held_positions(close > upper, close < lower, close < exit_lower, close > exit_upper)
    return series_like(nan_unless(signal, ~np.isnan(upper)), candles)


def bollinger_band_breakout(candles: pd.DataFrame, length: int, width: float) -> pd.Series:
    """Long on a close above the upper Bollinger band, short below the lower, exit back through the middle."""
    close = values_of(candles["close"])
    lower, mid, upper = (values_of(band) for band in bollinger_bands(candles["close"], int(length), float(width)))
    signal = held_positions(close > upper, close < lower, close < mid, close > mid)
    return series_like(nan_unless(signal, ~np.isnan(mid)), candles)


def _followed(entries: np.ndarray, hold: int, warm: np.ndarray, candles: pd.DataFrame) -> pd.Series:
    """Each entry held for `hold` bars (an entry is a non-NaN value), 0 between, NaN in the warm-up."""
    held = ffill_limited(entries, int(hold) - 1)
    held[np.isnan(held)] = 0.0
    return series_like(nan_unless(held, ~np.isnan(warm)), candles)


def atr_expansion(candles: pd.DataFrame, length: int, mult: float, hold: int) -> pd.Series:
    """Follow a bar that moves more than `mult` ATRs (of the bars before it) for `hold` bars."""
    high, low, close = candles["high"], candles["low"], candles["close"]
    prior_atr = shifted(values_of(atr(high, low, close, int(length), from_first_bar=True)), 1)
    close_v = values_of(close)
    move = close_v - shifted(close_v, 1)
    mult = float(mult)
    entries = np.where(move > mult * prior_atr, 1.0, np.where(move < -mult * prior_atr, -1.0, np.nan))
    return _followed(entries, hold, prior_atr, candles)


def _pct_change(close: pd.Series) -> pd.Series:
    """``Series.pct_change()`` of a close without gaps."""
    values = values_of(close)
    return series_like(divide(values, shifted(values, 1)) - 1.0, close, close.name)


def volatility_targeted_trend(candles: pd.DataFrame, length: int, trend_span: int, scale: float) -> pd.Series:
    """EMA direction, sized down when realised volatility is above its own rolling median."""
    length = int(length)
    close = candles["close"]
    vol_series = rolling_std(_pct_change(close), length)
    reference = values_of(vol_series.rolling(10 * length, min_periods=length).median())
    vol = values_of(vol_series)
    trend = values_of(ema(close, int(trend_span), min_periods=0))
    direction = np.sign(trend - shifted(trend, 1))
    size = divide(float(scale) * reference, nan_unless(vol, vol > 0.0))
    size = np.where(size > 1.0, 1.0, size)                     # clip(upper=1): NaN kept
    return series_like(direction * size, close, close.name)


def roc_threshold(candles: pd.DataFrame, length: int, threshold: float) -> pd.Series:
    """Long when the n-bar return exceeds `threshold` times its own volatility, short below minus that."""
    length = int(length)
    close = candles["close"]
    change = values_of(roc(close, length))
    noise = values_of(rolling_std(_pct_change(close), length)) * np.sqrt(length)
    bar = float(threshold) * noise
    signal = np.where(change > bar, 1.0, np.where(change < -bar, -1.0, 0.0))
    return series_like(nan_unless(signal, ~np.isnan(noise)), close)


def tstat_momentum(candles: pd.DataFrame, length: int, gain: float) -> pd.Series:
    """Position proportional to the t-statistic of the last n log returns, clipped to [-1, 1]."""
    length = int(length)
    ret = log_returns(candles["close"])
    rolling = ret.rolling(length, min_periods=length)
    t_stat = divide(values_of(rolling.sum()), values_of(rolling.std()) * np.sqrt(length))
    return series_like(np.clip(float(gain) * t_stat, -1.0, 1.0), ret, ret.name)


def volume_spike_follow(candles: pd.DataFrame, length: int, threshold: float, hold: int) -> pd.Series:
    """Follow the body of a bar whose log-volume z-score exceeds `threshold`, for `hold` bars."""
    length = int(length)
    volume_log = log_volume(candles["volume"])
    rolling = volume_log.rolling(length, min_periods=length)
    spread = values_of(rolling.std())
    volume_z = divide(values_of(volume_log) - values_of(rolling.mean()), nan_unless(spread, spread > 0))
    direction = np.sign(values_of(candles["close"]) - values_of(candles["open"]))
    entries = np.where(volume_z > float(threshold), direction, np.nan)
    return _followed(entries, hold, spread, candles)


def obv_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast EMA of on-balance volume is above its slow EMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    balance = obv(candles["close"], candles["volume"])
    return _sign_of_difference(ema(balance, fast), ema(balance, slow))


# --- filters ----------------------------------------------------------------------

def _flags(values: np.ndarray, like: pd.Series) -> pd.Series:
    return series_like(values, like, like.name)


def trending_filter(candles: pd.DataFrame, length: int, min_er: float) -> pd.Series:
    """True while the efficiency ratio shows a trend (ER >= min_er)."""
    ratio = efficiency_ratio(candles["close"], int(length), flat=np.nan)
    return _flags(values_of(ratio) >= float(min_er), ratio)


def ranging_filter(candles: pd.DataFrame, length: int, max_er: float) -> pd.Series:
    """True while the efficiency ratio shows a range (ER <= max_er)."""
    ratio = efficiency_ratio(candles["close"], int(length), flat=np.nan)
    return _flags(values_of(ratio) <= float(max_er), ratio)


def calm_filter(candles: pd.DataFrame, length: int, quantile: float) -> pd.Series:
    """True while realised volatility is at or below its rolling `quantile`."""
    length = int(length)
    vol = realised_volatility(candles["close"], length)
    cap = vol.rolling(10 * length, min_periods=length).quantile(float(quantile))
    return _flags(values_of(vol) <= values_of(cap), vol)


def volume_filter(candles: pd.DataFrame, length: int, min_z: float) -> pd.Series:
    """True on bars whose log-volume z-score is at least `min_z`."""
    z = zscore(log_volume(candles["volume"]), int(length))
    return _flags(values_of(z) >= float(min_z), z)
