"""Technical indicators, written once for the built-in strategies, the designer's building
blocks, the ML features and the regime labels.

Every function is causal: its value at bar t uses only bars up to and including t
(trailing rolling windows, recursive ``adjust=False`` exponential averages, positive
shifts, cumulative sums). Warm-up bars, where a window is not yet full, are NaN. Strategy
files may import these functions (the static check admits this module), so keep it to
numpy and pandas.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "sma", "ema", "wilder", "rolling_std", "zscore", "roc", "log_returns", "log_momentum",
    "realised_volatility", "average_gain_loss", "rsi", "centred_rsi", "macd_line",
    "bollinger_bands", "bollinger_percent_b", "donchian_channel", "true_range", "atr",
    "keltner_channel", "obv", "rolling_vwap", "log_volume", "efficiency_ratio",
]


def sma(series: pd.Series, window: int) -> pd.Series:
    """Simple moving average of the last `window` values."""
    return series.rolling(window, min_periods=window).mean()


def ema(series: pd.Series, span: int, *, min_periods: int | None = None) -> pd.Series:
    """Recursive exponential moving average with alpha 2/(span+1); NaN before `min_periods` (default span)."""
    return series.ewm(span=span, adjust=False, min_periods=span if min_periods is None else min_periods).mean()


def wilder(series: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing: a recursive exponential average with alpha 1/period."""
    return series.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def rolling_std(series: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """Standard deviation of the last `window` values (ddof 1: sample, 0: population)."""
    return series.rolling(window, min_periods=window).std(ddof=ddof)


def zscore(series: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """(value - rolling mean) / rolling std over `window` values; NaN where the std is 0."""
    std = rolling_std(series, window, ddof=ddof)
    return (series - sma(series, window)) / std.where(std > 0)


def roc(series: pd.Series, window: int) -> pd.Series:
    """Rate of change: value / value `window` bars ago - 1."""
    return series / series.shift(window) - 1.0


def log_returns(close: pd.Series) -> pd.Series:
    """One-bar log returns."""
    return np.log(close).diff()


def log_momentum(close: pd.Series, window: int) -> pd.Series:
    """Log return over the last `window` bars."""
    log_close = np.log(close)
    return log_close - log_close.shift(window)


def realised_volatility(close: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """Standard deviation of the last `window` one-bar log returns (per bar, not annualised)."""
    return rolling_std(log_returns(close), window, ddof=ddof)


def average_gain_loss(close: pd.Series, period: int) -> tuple[pd.Series, pd.Series]:
    """Wilder-smoothed average gain and average loss (both >= 0) of the close's moves."""
    delta = close.diff()
    return wilder(delta.clip(lower=0.0), period), wilder((-delta).clip(lower=0.0), period)


def rsi(close: pd.Series, period: int, *, flat: float = np.nan) -> pd.Series:
    """Wilder's RSI (0..100): 100 without losses; `flat` on a window without any move."""
    gain, loss = average_gain_loss(close, period)
    value = 100.0 - 100.0 / (1.0 + gain / loss)  # no losses: gain / 0 = inf -> 100; flat: 0 / 0 = NaN
    return value if np.isnan(flat) else value.where(value.notna() | gain.isna(), flat)


def centred_rsi(close: pd.Series, period: int) -> pd.Series:
    """RSI rescaled to [-1, 1] as (gain - loss) / (gain + loss); 0 on a window without any move."""
    gain, loss = average_gain_loss(close, period)
    total = gain + loss
    return ((gain - loss) / total.where(total > 0)).fillna(0.0).where(gain.notna())


def macd_line(close: pd.Series, fast: int, slow: int) -> pd.Series:
    """MACD line: EMA(fast) - EMA(slow) of the close."""
    return ema(close, fast) - ema(close, slow)


def bollinger_bands(close: pd.Series, window: int, width: float, *, ddof: int = 1
                    ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(lower, middle, upper): the SMA and the SMA -/+ `width` rolling standard deviations."""
    mid = sma(close, window)
    std = rolling_std(close, window, ddof=ddof)
    return mid - width * std, mid, mid + width * std


def bollinger_percent_b(close: pd.Series, window: int, width: float) -> pd.Series:
    """Bollinger %B: where the close sits between the lower (0) and upper (1) band."""
    mid = sma(close, window)
    std = rolling_std(close, window)
    lower = mid - width * std
    return (close - lower) / (2.0 * width * std)


def donchian_channel(high: pd.Series, low: pd.Series, window: int) -> tuple[pd.Series, pd.Series]:
    """(lower, upper): lowest low and highest high of the `window` bars BEFORE this one."""
    lowest = low.rolling(window, min_periods=window).min()
    highest = high.rolling(window, min_periods=window).max()
    return lowest.shift(1), highest.shift(1)


def true_range(high: pd.Series, low: pd.Series, close: pd.Series, *, from_first_bar: bool = False) -> pd.Series:
    """max(high - low, |high - previous close|, |low - previous close|).

    The first bar has no previous close: NaN, or high - low with `from_first_bar`.
    """
    prev_close = close.shift(1)
    legs = np.vstack([(high - low).to_numpy(), (high - prev_close).abs().to_numpy(),
                      (low - prev_close).abs().to_numpy()])
    # Plain arrays: candles may carry allows_duplicate_labels=False, which a concat of
    # unnamed series trips over. fmax skips NaN, maximum propagates it.
    widest = np.fmax.reduce(legs, axis=0) if from_first_bar else legs.max(axis=0)
    return pd.Series(widest, index=close.index)


def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int, *, from_first_bar: bool = False
        ) -> pd.Series:
    """Average true range, Wilder-smoothed over `period` bars."""
    return wilder(true_range(high, low, close, from_first_bar=from_first_bar), period)


def keltner_channel(high: pd.Series, low: pd.Series, close: pd.Series, window: int, mult: float
                    ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(lower, middle, upper): the close's SMA -/+ `mult` times the SMA of the true range."""
    mid = sma(close, window)
    width = sma(true_range(high, low, close), window)
    return mid - mult * width, mid, mid + mult * width


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume: cumulative volume signed by the close's change."""
    return (np.sign(close.diff()).fillna(0.0) * volume).cumsum()


def rolling_vwap(high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, window: int
                 ) -> pd.Series:
    """Volume-weighted average of the typical price (h+l+c)/3 over `window` bars; NaN without volume."""
    typical = (high + low + close) / 3.0
    volume_sum = volume.rolling(window).sum()
    return (typical * volume).rolling(window).sum() / volume_sum.where(volume_sum > 0)


def log_volume(volume: pd.Series) -> pd.Series:
    """Log of the volume; NaN for bars without volume."""
    return np.log(volume.where(volume > 0.0))


def efficiency_ratio(close: pd.Series, window: int, *, flat: float = 0.0) -> pd.Series:
    """Kaufman efficiency ratio: net move over path length of the last `window` bars; `flat` without a path."""
    net = (close - close.shift(window)).abs()
    path = close.diff().abs().rolling(window, min_periods=window).sum()
    ratio = net / path.where(path > 0.0)
    return ratio.where(path != 0.0, flat).where(path.notna())
