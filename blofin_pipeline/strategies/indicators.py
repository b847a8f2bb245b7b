"""Technical indicators, written once for the built-in strategies, the designer's building
blocks, the ML features and the regime labels.

Every function is causal: its value at bar t uses only bars up to and including t
(trailing rolling windows, recursive ``adjust=False`` exponential averages, positive
shifts, cumulative sums). Warm-up bars, where a window is not yet full, are NaN. Strategy
files may import these functions (the static check admits this module), so keep it to
numpy and pandas.

The windows and averages are pandas' own kernels; the arithmetic around them is done on
numpy arrays and wrapped into one Series at the end. The values are those of the same
formula in pandas operators, bit for bit (tests/strategies/test_pandas_forms.py checks it),
at a fraction of the cost: a pandas operator costs 20-450 us on a 2,000-bar Series, its
numpy form 2-10 us, and the lookahead gate runs each strategy ~3,000 times per check.
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


# --- arrays: the pandas operators' semantics on float64 numpy arrays ----------------

def values_of(series: pd.Series) -> np.ndarray:
    """The Series' values as float64 (no copy when they already are)."""
    return series.to_numpy(dtype=np.float64)


def series_like(values: np.ndarray, like: pd.Series, name: object = None) -> pd.Series:
    """`values` as a Series on `like`'s index, named `name`."""
    return pd.Series(values, index=like.index, name=name)


def shifted(values: np.ndarray, periods: int) -> np.ndarray:
    """``Series.shift(periods)`` for periods >= 0: NaN for the first `periods` bars."""
    out = np.full(len(values), np.nan)
    if periods < len(values):
        out[periods:] = values[: len(values) - periods]
    return out


def nan_unless(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``Series.where(keep)``: NaN where `keep` is False."""
    return np.where(keep, values, np.nan)


def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Division as pandas does it: x/0 is +-inf, 0/0 NaN, without a warning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def ffill_limited(values: np.ndarray, limit: int) -> np.ndarray:
    """``Series.ffill(limit=limit)``: a NaN takes the last value at most `limit` bars back."""
    if limit < 1:
        raise ValueError(f"a forward fill needs a limit of at least 1 bar, got {limit}")
    bars = np.arange(len(values))
    last = np.maximum.accumulate(np.where(np.isnan(values), -1, bars))
    return np.where((last >= 0) & (bars - last <= limit), values[np.maximum(last, 0)], np.nan)


def _rolling(series: pd.Series, window: int):  # noqa: ANN202 - pandas' Rolling
    return series.rolling(window, min_periods=window)


# --- indicators ----------------------------------------------------------------

def sma(series: pd.Series, window: int) -> pd.Series:
    """Simple moving average of the last `window` values."""
    return _rolling(series, window).mean()


def ema(series: pd.Series, span: int, *, min_periods: int | None = None) -> pd.Series:
    """Recursive exponential moving average with alpha 2/(span+1); NaN before `min_periods` (default span)."""
    return series.ewm(span=span, adjust=False, min_periods=span if min_periods is None else min_periods).mean()


def wilder(series: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing: a recursive exponential average with alpha 1/period."""
    return series.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()


def rolling_std(series: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """Standard deviation of the last `window` values (ddof 1: sample, 0: population)."""
    return _rolling(series, window).std(ddof=ddof)


def zscore(series: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """(value - rolling mean) / rolling std over `window` values; NaN where the std is 0."""
    rolling = _rolling(series, window)
    std = values_of(rolling.std(ddof=ddof))
    centred = values_of(series) - values_of(rolling.mean())
    return series_like(divide(centred, nan_unless(std, std > 0)), series, series.name)


def roc(series: pd.Series, window: int) -> pd.Series:
    """Rate of change: value / value `window` bars ago - 1."""
    values = values_of(series)
    return series_like(divide(values, shifted(values, window)) - 1.0, series, series.name)


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values)


def log_returns(close: pd.Series) -> pd.Series:
    """One-bar log returns."""
    return log_momentum(close, 1)


def log_momentum(close: pd.Series, window: int) -> pd.Series:
    """Log return over the last `window` bars."""
    log_close = _log(values_of(close))
    with np.errstate(invalid="ignore"):  # inf - inf (a zero close) is NaN, as in pandas
        return series_like(log_close - shifted(log_close, window), close, close.name)


def realised_volatility(close: pd.Series, window: int, *, ddof: int = 1) -> pd.Series:
    """Standard deviation of the last `window` one-bar log returns (per bar, not annualised)."""
    return rolling_std(log_returns(close), window, ddof=ddof)


def average_gain_loss(close: pd.Series, period: int) -> tuple[pd.Series, pd.Series]:
    """Wilder-smoothed average gain and average loss (both >= 0) of the close's moves."""
    values = values_of(close)
    delta = values - shifted(values, 1)
    gain = np.where(delta < 0.0, 0.0, delta)          # clip(lower=0): NaN and -0.0 kept
    loss = np.where(-delta < 0.0, 0.0, -delta)
    return (wilder(series_like(gain, close, close.name), period),
            wilder(series_like(loss, close, close.name), period))


def rsi(close: pd.Series, period: int, *, flat: float = np.nan) -> pd.Series:
    """Wilder's RSI (0..100): 100 without losses; `flat` on a window without any move."""
    gain, loss = (values_of(s) for s in average_gain_loss(close, period))
    value = 100.0 - divide(100.0, 1.0 + divide(gain, loss))  # no losses: gain / 0 = inf -> 100; flat: 0 / 0 = NaN
    if not np.isnan(flat):
        value = np.where(~np.isnan(value) | np.isnan(gain), value, flat)
    return series_like(value, close, close.name)


def centred_rsi(close: pd.Series, period: int) -> pd.Series:
    """RSI rescaled to [-1, 1] as (gain - loss) / (gain + loss); 0 on a window without any move."""
    gain, loss = (values_of(s) for s in average_gain_loss(close, period))
    total = gain + loss
    centred = divide(gain - loss, nan_unless(total, total > 0))
    centred[np.isnan(centred)] = 0.0
    return series_like(nan_unless(centred, ~np.isnan(gain)), close, close.name)


def macd_line(close: pd.Series, fast: int, slow: int) -> pd.Series:
    """MACD line: EMA(fast) - EMA(slow) of the close."""
    return series_like(values_of(ema(close, fast)) - values_of(ema(close, slow)), close, close.name)


def bollinger_bands(close: pd.Series, window: int, width: float, *, ddof: int = 1
                    ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(lower, middle, upper): the SMA and the SMA -/+ `width` rolling standard deviations."""
    rolling = _rolling(close, window)
    mid = rolling.mean()
    spread = width * values_of(rolling.std(ddof=ddof))
    middle = values_of(mid)
    return (series_like(middle - spread, close, close.name), mid,
            series_like(middle + spread, close, close.name))


def bollinger_percent_b(close: pd.Series, window: int, width: float) -> pd.Series:
    """Bollinger %B: where the close sits between the lower (0) and upper (1) band."""
    rolling = _rolling(close, window)
    std = values_of(rolling.std())
    lower = values_of(rolling.mean()) - width * std
    return series_like(divide(values_of(close) - lower, 2.0 * width * std), close, close.name)


def donchian_channel(high: pd.Series, low: pd.Series, window: int) -> tuple[pd.Series, pd.Series]:
    """(lower, upper): lowest low and highest high of the `window` bars BEFORE this one."""
    lowest = values_of(_rolling(low, window).min())
    highest = values_of(_rolling(high, window).max())
    return series_like(shifted(lowest, 1), low, low.name), series_like(shifted(highest, 1), high, high.name)


def _true_range(high: pd.Series, low: pd.Series, close: pd.Series, from_first_bar: bool) -> np.ndarray:
    high_v, low_v = values_of(high), values_of(low)
    prev_close = shifted(values_of(close), 1)
    legs = np.vstack([high_v - low_v, np.abs(high_v - prev_close), np.abs(low_v - prev_close)])
    # fmax skips NaN, maximum propagates it.
    return np.fmax.reduce(legs, axis=0) if from_first_bar else legs.max(axis=0)


def true_range(high: pd.Series, low: pd.Series, close: pd.Series, *, from_first_bar: bool = False) -> pd.Series:
    """max(high - low, |high - previous close|, |low - previous close|).

    The first bar has no previous close: NaN, or high - low with `from_first_bar`.
    """
    return series_like(_true_range(high, low, close, from_first_bar), close)


def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int, *, from_first_bar: bool = False
        ) -> pd.Series:
    """Average true range, Wilder-smoothed over `period` bars."""
    return wilder(true_range(high, low, close, from_first_bar=from_first_bar), period)


def keltner_channel(high: pd.Series, low: pd.Series, close: pd.Series, window: int, mult: float
                    ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(lower, middle, upper): the close's SMA -/+ `mult` times the SMA of the true range."""
    mid = sma(close, window)
    width = mult * values_of(sma(true_range(high, low, close), window))
    middle = values_of(mid)
    return series_like(middle - width, close), mid, series_like(middle + width, close)


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume: cumulative volume signed by the close's change."""
    values = values_of(close)
    direction = np.sign(values - shifted(values, 1))
    direction[np.isnan(direction)] = 0.0
    signed = direction * values_of(volume)
    balance = np.nancumsum(signed)     # Series.cumsum: a NaN volume is skipped and stays NaN
    balance[np.isnan(signed)] = np.nan
    return series_like(balance, close)


def rolling_vwap(high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series, window: int
                 ) -> pd.Series:
    """Volume-weighted average of the typical price (h+l+c)/3 over `window` bars; NaN without volume."""
    typical = (values_of(high) + values_of(low) + values_of(close)) / 3.0
    volume_v = values_of(volume)
    volume_sum = values_of(volume.rolling(window).sum())
    turnover = values_of(series_like(typical * volume_v, close).rolling(window).sum())
    return series_like(divide(turnover, nan_unless(volume_sum, volume_sum > 0)), close)


def log_volume(volume: pd.Series) -> pd.Series:
    """Log of the volume; NaN for bars without volume."""
    values = values_of(volume)
    return series_like(_log(nan_unless(values, values > 0.0)), volume, volume.name)


def efficiency_ratio(close: pd.Series, window: int, *, flat: float = 0.0) -> pd.Series:
    """Kaufman efficiency ratio: net move over path length of the last `window` bars; `flat` without a path."""
    values = values_of(close)
    net = np.abs(values - shifted(values, window))
    step = series_like(np.abs(values - shifted(values, 1)), close, close.name)
    path = values_of(_rolling(step, window).sum())
    ratio = np.where(path != 0.0, divide(net, nan_unless(path, path > 0.0)), flat)
    return series_like(nan_unless(ratio, ~np.isnan(path)), close, close.name)
