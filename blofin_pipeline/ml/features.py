"""Causal features for the ML models, built from candles of one or more symbols.

Every feature at bar t is a function of bars <= t only: rolling windows look back,
exponential averages are the recursive (``adjust=False``) kind, and other symbols are
aligned to this symbol's bars by forward fill (their last known close). A row is
therefore the information a trader has at the close of bar t, which is when the
position held over bar t+1 is decided. ``tests/ml/test_features.py`` proves it by
truncation: features computed on data cut at t equal the full-data features at t.

Warm-up rows (where a window is not yet full) are NaN; callers drop them.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import ModelError
from blofin_pipeline.strategies.indicators import (
    atr,
    bollinger_percent_b,
    centred_rsi,
    ema,
    log_momentum,
    log_returns,
    log_volume,
    macd_line,
    realised_volatility,
    zscore,
)

logger = logging.getLogger(__name__)

RETURN_LAGS = (1, 2, 3)            # single-bar log returns r[t], r[t-1], r[t-2]
MOMENTUM_WINDOWS = (6, 12, 24)     # cumulative log returns over the last k bars
VOLATILITY_WINDOWS = (6, 24, 72)   # realised volatility (std of log returns)
VOLUME_WINDOWS = (24, 72)          # z-score of log volume
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BOLLINGER_WINDOW, BOLLINGER_WIDTH = 20, 2.0
ATR_PERIOD = 14
CROSS_MOMENTUM_WINDOW = 6
REQUIRED_COLUMNS = ("open", "high", "low", "close", "volume")
# Longest look-back of any feature, in bars: rows before it are warm-up.
WARMUP_BARS = max(max(VOLATILITY_WINDOWS), max(VOLUME_WINDOWS), MACD_SLOW + MACD_SIGNAL) + 1


def _check_candles(candles: pd.DataFrame, symbol: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in candles.columns]
    if missing:
        raise ModelError(f"candles of {symbol!r} lack columns {missing}")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise ModelError(f"candles of {symbol!r} need a DatetimeIndex, got {type(candles.index).__name__}")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise ModelError(f"candles of {symbol!r} must be sorted ascending with unique timestamps")


def _own_features(candles: pd.DataFrame) -> dict[str, pd.Series]:
    close, high, low = candles["close"], candles["high"], candles["low"]
    ret = log_returns(close)
    out: dict[str, pd.Series] = {}
    for lag in RETURN_LAGS:
        out[f"ret_lag{lag}"] = ret.shift(lag - 1)
    for window in MOMENTUM_WINDOWS:
        out[f"mom_{window}"] = log_momentum(close, window)
    for window in VOLATILITY_WINDOWS:
        out[f"rvol_{window}"] = realised_volatility(close, window)
    out["rvol_ratio_6_72"] = out["rvol_6"] / out["rvol_72"]
    out["rsi_14"] = centred_rsi(close, RSI_PERIOD)

    macd = macd_line(close, MACD_FAST, MACD_SLOW) / close
    signal = ema(macd, MACD_SIGNAL)
    out["macd_line"] = macd
    out["macd_signal"] = signal
    out["macd_hist"] = macd - signal

    out["bb_pctb_20"] = bollinger_percent_b(close, BOLLINGER_WINDOW, BOLLINGER_WIDTH)
    out["atr_14"] = atr(high, low, close, ATR_PERIOD) / close
    out["range_hl"] = (high - low) / close

    volume_log = log_volume(candles["volume"])
    for window in VOLUME_WINDOWS:
        out[f"volume_z_{window}"] = zscore(volume_log, window)

    index = candles.index
    hour = (index.hour + index.minute / 60.0).to_numpy()
    dow = (index.day_of_week + hour / 24.0)
    out["hour_sin"] = pd.Series(np.sin(2 * np.pi * hour / 24.0), index=index)
    out["hour_cos"] = pd.Series(np.cos(2 * np.pi * hour / 24.0), index=index)
    out["dow_sin"] = pd.Series(np.sin(2 * np.pi * np.asarray(dow) / 7.0), index=index)
    out["dow_cos"] = pd.Series(np.cos(2 * np.pi * np.asarray(dow) / 7.0), index=index)
    return out


def _cross_features(
    candles_by_symbol: dict[str, pd.DataFrame], symbol: str, index: pd.DatetimeIndex, own_ret: pd.Series
) -> dict[str, pd.Series]:
    """Returns of the other symbols and of the market average, aligned on this symbol's bars."""
    others = sorted(s for s in candles_by_symbol if s != symbol)
    if not others:
        return {}
    out: dict[str, pd.Series] = {}
    rets = [own_ret]
    for other in others:
        frame = candles_by_symbol[other]
        _check_candles(frame, other)
        # Forward fill: the other symbol's last close known at or before bar t.
        close = frame["close"].reindex(index.union(frame.index)).ffill().reindex(index)
        ret = pd.Series(np.log(close.to_numpy()), index=index).diff()
        rets.append(ret)
        out[f"xret_{other}"] = ret
    # Plain arrays: the candles may carry allows_duplicate_labels=False, which concat
    # of same-named series would trip over.
    market = pd.Series(np.vstack([r.to_numpy() for r in rets]).mean(axis=0), index=index)
    out["mkt_ret"] = market
    out["mkt_mom_6"] = market.rolling(CROSS_MOMENTUM_WINDOW).sum()
    out["excess_ret"] = own_ret - market
    return out


def build_features(candles_by_symbol: dict[str, pd.DataFrame], symbol: str) -> pd.DataFrame:
    """Feature frame of ``symbol`` on its own bars; column order is stable for a symbol set.

    Own features (returns, momentum, realised volatility, RSI, MACD, Bollinger %B, ATR,
    volume z-scores, time of day/week) come first, then cross-symbol features (each
    other symbol's latest return, the market average return and its 6-bar sum, and this
    symbol's return in excess of the market). Warm-up rows hold NaN.
    """
    if symbol not in candles_by_symbol:
        raise ModelError(f"no candles for symbol {symbol!r}; have {sorted(candles_by_symbol)}")
    candles = candles_by_symbol[symbol]
    _check_candles(candles, symbol)
    own = _own_features(candles)
    cross = _cross_features(candles_by_symbol, symbol, candles.index, own["ret_lag1"])
    features = pd.DataFrame({**own, **cross}, index=candles.index)
    return features.replace([np.inf, -np.inf], np.nan).astype(np.float64)
