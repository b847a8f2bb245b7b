"""Signal and filter rules: the building blocks the offline designer composes strategies from.

A *signal* function returns the target position per bar (a float Series in [-1, 1] on
the candles' index, NaN during the warm-up); a *filter* function returns a boolean Series,
False where no position should be held. `finish_positions` applies a filter and the
direction. Generated strategy files import these functions (the static check admits this
module), so each rule is real code that linters, tests and coverage see. Every rule is
causal: built from `indicators` and trailing windows, the value at bar t uses bars <= t.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies.indicators import (
    atr,
    bollinger_bands,
    donchian_channel,
    efficiency_ratio,
    ema,
    log_returns,
    log_volume,
    obv,
    realised_volatility,
    roc,
    rolling_std,
    rsi,
    sma,
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
    enter_long = long_entry.fillna(False).to_numpy(dtype=bool)
    enter_short = short_entry.fillna(False).to_numpy(dtype=bool)
    leave_long = long_exit.fillna(False).to_numpy(dtype=bool)
    leave_short = short_exit.fillna(False).to_numpy(dtype=bool)
    # Without a loop: the position at bar i is the direction of the last entry j <= i (a long
    # entry wins a bar with both), unless an exit of that direction came after it, in (j, i].
    bars = np.arange(len(enter_long))
    entered = enter_long | enter_short
    last_entry = np.maximum.accumulate(np.where(entered, bars, -1))
    direction = np.where(enter_long, 1.0, -1.0)[np.maximum(last_entry, 0)]
    last_long_exit = np.maximum.accumulate(np.where(leave_long, bars, -1))
    last_short_exit = np.maximum.accumulate(np.where(leave_short, bars, -1))
    closed = np.where(direction > 0, last_long_exit, last_short_exit) > last_entry
    positions = np.where((last_entry < 0) | closed, 0.0, direction)
    return pd.Series(positions, index=long_entry.index)


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

def ema_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast EMA is above the slow EMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    close = candles["close"]
    return np.sign(ema(close, fast) - ema(close, slow))


def sma_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast SMA is above the slow SMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    close = candles["close"]
    return np.sign(sma(close, fast) - sma(close, slow))


def ma_slope_trend(candles: pd.DataFrame, length: int, lag: int) -> pd.Series:
    """Long above a rising SMA, short below a falling one (slope over `lag` bars), else flat."""
    length, lag = int(length), int(lag)
    close = candles["close"]
    ma = sma(close, length)
    rising = ma > ma.shift(lag)
    falling = ma < ma.shift(lag)
    signal = pd.Series(np.where((close > ma) & rising, 1.0,
                                np.where((close < ma) & falling, -1.0, 0.0)), index=close.index)
    return signal.where(ma.shift(lag).notna())


def rsi_band_reversion(candles: pd.DataFrame, length: int, band: float) -> pd.Series:
    """Long when RSI falls below 50-band, short above 50+band, flat when it crosses 50."""
    strength = rsi(candles["close"], int(length), flat=100.0)
    band = float(band)
    centre = np.sign(strength - 50.0)
    crossed = centre != centre.shift(1)
    signal = hold_positions(strength < 50.0 - band, strength > 50.0 + band, crossed, crossed)
    return signal.where(strength.notna())


def zscore_band_reversion(candles: pd.DataFrame, length: int, entry_z: float, exit_z: float) -> pd.Series:
    """Short when the close is entry_z sigmas above its rolling mean, long below, flat once |z| < exit_z."""
    length = int(length)
    close = candles["close"]
    z = zscore(close, length)
    entry = float(entry_z)
    calm = z.abs() < float(exit_z)
    return hold_positions(z < -entry, z > entry, calm, calm).where(sma(close, length).notna())


def bollinger_band_reversion(candles: pd.DataFrame, length: int, width: float) -> pd.Series:
    """Long below the lower Bollinger band, short above the upper band, exit at the middle."""
    close = candles["close"]
    lower, mid, upper = bollinger_bands(close, int(length), float(width))
    above_mid = close >= mid
    return hold_positions(close < lower, close > upper, above_mid, ~above_mid).where(mid.notna())


def donchian_channel_breakout(candles: pd.DataFrame, length: int, exit_frac: float) -> pd.Series:
    """Long on a close above the previous n-bar high, short below the n-bar low, exit on the
    opposite side of the shorter (exit_frac * n) channel."""
    length = int(length)
    exit_len = max(2, int(length * float(exit_frac)))
    high, low, close = candles["high"], candles["low"], candles["close"]
    lower, upper = donchian_channel(high, low, length)
    exit_lower, exit_upper = donchian_channel(high, low, exit_len)
    signal = hold_positions(close > upper, close < lower, close < exit_lower, close > exit_upper)
    return signal.where(upper.notna())


def bollinger_band_breakout(candles: pd.DataFrame, length: int, width: float) -> pd.Series:
    """Long on a close above the upper Bollinger band, short below the lower, exit back through the middle."""
    close = candles["close"]
    lower, mid, upper = bollinger_bands(close, int(length), float(width))
    return hold_positions(close > upper, close < lower, close < mid, close > mid).where(mid.notna())


def atr_expansion(candles: pd.DataFrame, length: int, mult: float, hold: int) -> pd.Series:
    """Follow a bar that moves more than `mult` ATRs (of the bars before it) for `hold` bars."""
    high, low, close = candles["high"], candles["low"], candles["close"]
    prior_atr = atr(high, low, close, int(length), from_first_bar=True).shift(1)
    move = close - close.shift(1)
    mult = float(mult)
    entries = pd.Series(np.where(move > mult * prior_atr, 1.0, np.where(move < -mult * prior_atr, -1.0, np.nan)),
                        index=close.index)
    return entries.ffill(limit=int(hold) - 1).fillna(0.0).where(prior_atr.notna())


def volatility_targeted_trend(candles: pd.DataFrame, length: int, trend_span: int, scale: float) -> pd.Series:
    """EMA direction, sized down when realised volatility is above its own rolling median."""
    length = int(length)
    close = candles["close"]
    vol = rolling_std(close.pct_change(), length)
    reference = vol.rolling(10 * length, min_periods=length).median()
    direction = np.sign(ema(close, int(trend_span), min_periods=0).diff())
    size = (float(scale) * reference / vol.where(vol > 0.0)).clip(upper=1.0)
    return direction * size


def roc_threshold(candles: pd.DataFrame, length: int, threshold: float) -> pd.Series:
    """Long when the n-bar return exceeds `threshold` times its own volatility, short below minus that."""
    length = int(length)
    close = candles["close"]
    change = roc(close, length)
    noise = rolling_std(close.pct_change(), length) * np.sqrt(length)
    bar = float(threshold) * noise
    return pd.Series(np.where(change > bar, 1.0, np.where(change < -bar, -1.0, 0.0)),
                     index=close.index).where(noise.notna())


def tstat_momentum(candles: pd.DataFrame, length: int, gain: float) -> pd.Series:
    """Position proportional to the t-statistic of the last n log returns, clipped to [-1, 1]."""
    length = int(length)
    ret = log_returns(candles["close"])
    t_stat = ret.rolling(length, min_periods=length).sum() / (rolling_std(ret, length) * np.sqrt(length))
    return (float(gain) * t_stat).clip(-1.0, 1.0)


def volume_spike_follow(candles: pd.DataFrame, length: int, threshold: float, hold: int) -> pd.Series:
    """Follow the body of a bar whose log-volume z-score exceeds `threshold`, for `hold` bars."""
    length = int(length)
    volume_log = log_volume(candles["volume"])
    spread = rolling_std(volume_log, length)
    volume_z = (volume_log - sma(volume_log, length)) / spread.where(spread > 0)  # zscore, its std once
    direction = np.sign(candles["close"] - candles["open"])
    entries = pd.Series(np.where(volume_z > float(threshold), direction, np.nan), index=candles.index)
    return entries.ffill(limit=int(hold) - 1).fillna(0.0).where(spread.notna())


def obv_crossover(candles: pd.DataFrame, fast: int, slow: int) -> pd.Series:
    """Long when the fast EMA of on-balance volume is above its slow EMA, short below."""
    fast = int(fast)
    slow = max(int(slow), fast + 1)
    balance = obv(candles["close"], candles["volume"])
    return np.sign(ema(balance, fast) - ema(balance, slow))


# --- filters ----------------------------------------------------------------------

def trending_filter(candles: pd.DataFrame, length: int, min_er: float) -> pd.Series:
    """True while the efficiency ratio shows a trend (ER >= min_er)."""
    return efficiency_ratio(candles["close"], int(length), flat=np.nan) >= float(min_er)


def ranging_filter(candles: pd.DataFrame, length: int, max_er: float) -> pd.Series:
    """True while the efficiency ratio shows a range (ER <= max_er)."""
    return efficiency_ratio(candles["close"], int(length), flat=np.nan) <= float(max_er)


def calm_filter(candles: pd.DataFrame, length: int, quantile: float) -> pd.Series:
    """True while realised volatility is at or below its rolling `quantile`."""
    length = int(length)
    vol = realised_volatility(candles["close"], length)
    cap = vol.rolling(10 * length, min_periods=length).quantile(float(quantile))
    return vol <= cap


def volume_filter(candles: pd.DataFrame, length: int, min_z: float) -> pd.Series:
    """True on bars whose log-volume z-score is at least `min_z`."""
    return zscore(log_volume(candles["volume"]), int(length)) >= float(min_z)
