"""Market regime per symbol: trend state (up / down / range) and volatility level.

Every number is computed from trailing windows, so the label of bar t uses only bars
up to and including t (`label_regimes` is safe to join onto a backtest's returns).

Trend state
    Kaufman's efficiency ratio ER = |close[t] - close[t-n]| / sum(|close[i] - close[i-1]|)
    over the last n bars (1 for a straight line, near 0 for a back-and-forth market),
    and the slope of a long simple moving average, measured in units of the bar
    volatility so that it means the same for BTC and for a small coin. The market is
    trending ("up" or "down", by the sign of the slope) when ER >= ``ER_TREND`` and the
    slope is at least ``SLOPE_TREND`` bar-sigmas per bar in that direction; otherwise
    it is "range".

Volatility level
    Realised volatility (standard deviation of log returns over a short window), ranked
    against its own history up to that bar (expanding percentile). Below
    ``VOL_LOW_PCT`` it is "low", above ``VOL_HIGH_PCT`` "high", otherwise "normal".
"""
from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.numeric import finite_or_none
from blofin_pipeline.strategies.indicators import (
    efficiency_ratio,
    log_returns,
    rolling_std,
)

logger = logging.getLogger(__name__)

TREND_STATES: tuple[str, ...] = ("up", "down", "range")
VOL_LEVELS: tuple[str, ...] = ("low", "normal", "high")

ER_WINDOW = 48          # bars of the efficiency ratio
MA_WINDOW = 96          # bars of the long moving average
SLOPE_LAG = 24          # bars over which the moving average's slope is measured
VOL_WINDOW = 24         # bars of realised volatility
ER_TREND = 0.30         # efficiency ratio at or above which a market can be trending
SLOPE_TREND = 0.05      # MA slope, in bar sigmas per bar, at or above which it trends
VOL_LOW_PCT = 0.25      # realised-vol percentile below which volatility is "low"
VOL_HIGH_PCT = 0.75     # realised-vol percentile above which volatility is "high"
MIN_BARS = 32           # fewer bars than this: not enough history to say anything


def _check_candles(candles: pd.DataFrame, what: str) -> None:
    if not isinstance(candles, pd.DataFrame) or "close" not in candles.columns:
        raise DataValidationError(f"{what}: candles must be a DataFrame with a 'close' column")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise DataValidationError(f"{what}: candles need a DatetimeIndex")


def expanding_percentile(values: pd.Series) -> pd.Series:
    """Fraction of this series' own past values (up to and including t) that are <= value[t]."""
    arr = values.to_numpy(dtype=float)
    out = np.full(arr.shape, np.nan)
    seen: list[float] = []
    for i, v in enumerate(arr):
        if math.isnan(v):
            continue
        bisect.insort(seen, v)
        out[i] = bisect.bisect_right(seen, v) / len(seen)
    return pd.Series(out, index=values.index)


def label_regimes(
    candles: pd.DataFrame,
    *,
    er_window: int = ER_WINDOW,
    ma_window: int = MA_WINDOW,
    slope_lag: int = SLOPE_LAG,
    vol_window: int = VOL_WINDOW,
) -> pd.DataFrame:
    """Per-bar regime: columns trend, volatility (labels) and the numbers behind them.

    Columns: efficiency_ratio, ma_slope (bar sigmas per bar), realised_vol (per bar),
    vol_percentile, trend, volatility. Bars without enough history get trend "range"
    and volatility "normal" with NaN numbers.
    """
    _check_candles(candles, "label_regimes")
    for label, value in (("er_window", er_window), ("ma_window", ma_window),
                         ("slope_lag", slope_lag), ("vol_window", vol_window)):
        if not isinstance(value, int) or value < 2:
            raise ValueError(f"label_regimes: {label} must be an integer >= 2, got {value!r}")
    close = candles["close"].astype(float)
    log_ret = log_returns(close)
    bar_sigma = rolling_std(log_ret, vol_window)
    # A perfectly flat window has no path at all: it is not trending (ER 0).
    er = efficiency_ratio(close, er_window)
    ma = close.rolling(ma_window, min_periods=ma_window).mean()
    slope = np.log(ma / ma.shift(slope_lag)) / slope_lag
    # Slope per bar relative to the typical bar move; a long-run sigma avoids blowing up in calm spells.
    sigma_ref = log_ret.rolling(ma_window, min_periods=vol_window).std()
    slope_sigmas = slope / sigma_ref.replace(0.0, np.nan)
    slope_sigmas = slope_sigmas.where(sigma_ref != 0.0, np.sign(slope) * np.inf)
    pct = expanding_percentile(bar_sigma)

    trending = (er >= ER_TREND) & (slope_sigmas.abs() >= SLOPE_TREND)
    trend = np.where(trending & (slope_sigmas > 0), "up", np.where(trending & (slope_sigmas < 0), "down", "range"))
    vol = np.where(pct < VOL_LOW_PCT, "low", np.where(pct > VOL_HIGH_PCT, "high", "normal"))
    return pd.DataFrame(
        {
            "efficiency_ratio": er,
            "ma_slope": slope_sigmas,
            "realised_vol": bar_sigma,
            "vol_percentile": pct,
            "trend": pd.Series(trend, index=candles.index),
            "volatility": pd.Series(vol, index=candles.index).where(pct.notna(), "normal"),
        },
        index=candles.index,
    )


def detect_regime(candles: pd.DataFrame, *, periods_per_year: float | None = None) -> dict[str, Any]:
    """Regime of one symbol as of its last bar, with the numbers behind the labels.

    Returns {"trend", "volatility", "regime" (e.g. "up/high"), "efficiency_ratio",
    "ma_slope", "realised_vol" (per bar), "realised_vol_annual" (when periods_per_year
    is given), "vol_percentile", "trend_share" (fraction of the last ER_WINDOW bars
    labelled trending), "bars", "as_of"}. With fewer than MIN_BARS bars the labels are
    "unknown".
    """
    _check_candles(candles, "detect_regime")
    n = len(candles)
    if n < MIN_BARS:
        return {
            "trend": "unknown", "volatility": "unknown", "regime": "unknown/unknown",
            "efficiency_ratio": None, "ma_slope": None, "realised_vol": None,
            "realised_vol_annual": None, "vol_percentile": None, "trend_share": None,
            "bars": n, "as_of": candles.index[-1].isoformat() if n else None,
        }
    # Shrink windows for short histories so a few days of hourly bars still get a label.
    ma_window = min(MA_WINDOW, max(8, n // 2))
    er_window = min(ER_WINDOW, max(8, n // 3))
    slope_lag = min(SLOPE_LAG, max(4, ma_window // 4))
    vol_window = min(VOL_WINDOW, max(8, n // 4))
    labels = label_regimes(candles, er_window=er_window, ma_window=ma_window,
                           slope_lag=slope_lag, vol_window=vol_window)
    last = labels.iloc[-1]
    recent = labels["trend"].iloc[-er_window:]
    sigma = finite_or_none(last["realised_vol"]) if pd.notna(last["realised_vol"]) else None
    annual = sigma * math.sqrt(periods_per_year) if (sigma is not None and periods_per_year) else None
    out = {
        "trend": str(last["trend"]),
        "volatility": str(last["volatility"]),
        "regime": f"{last['trend']}/{last['volatility']}",
        "efficiency_ratio": finite_or_none(last["efficiency_ratio"]) if pd.notna(last["efficiency_ratio"]) else None,
        "ma_slope": finite_or_none(last["ma_slope"]) if pd.notna(last["ma_slope"]) else None,
        "realised_vol": sigma,
        "realised_vol_annual": annual,
        "vol_percentile": finite_or_none(last["vol_percentile"]) if pd.notna(last["vol_percentile"]) else None,
        "trend_share": float((recent != "range").mean()),
        "bars": n,
        "as_of": candles.index[-1].isoformat(),
    }
    logger.debug("regime as of %s: %s (ER %.2f)", out["as_of"], out["regime"], out["efficiency_ratio"] or float("nan"))
    return out


def detect_regimes(
    candles_by_symbol: Mapping[str, pd.DataFrame], *, periods_per_year: float | None = None
) -> dict[str, dict[str, Any]]:
    """`detect_regime` for every symbol: {symbol: regime dict}."""
    out: dict[str, dict[str, Any]] = {}
    for symbol, candles in candles_by_symbol.items():
        try:
            out[symbol] = detect_regime(candles, periods_per_year=periods_per_year)
        except DataValidationError as err:
            raise DataValidationError(f"symbol {symbol!r}: {err}") from err
    logger.info("regimes: %s", ", ".join(f"{s}={r['regime']}" for s, r in out.items()))
    return out
