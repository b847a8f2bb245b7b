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
from collections.abc import Mapping

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


def market_panel(candles_by_symbol: Mapping[str, pd.DataFrame]) -> pd.Series | None:
    """The market panel shared by every symbol's features, computed once: the mean over
    symbols of the log close, each symbol forward-filled (its last known close) on the union
    of all bars; NaN until every symbol has a close. None for a single symbol (no market).

    Its difference on a symbol's own bars is exactly the mean over symbols of their returns
    over that bar, so a symbol's features need only this one series, not every other
    symbol's candles: features cost the same per symbol whatever the number of symbols.
    """
    if len(candles_by_symbol) < 2:
        return None
    index = pd.DatetimeIndex([])
    for symbol, frame in candles_by_symbol.items():
        _check_candles(frame, symbol)
        index = index.union(frame.index)
    total = np.zeros(len(index))
    for frame in candles_by_symbol.values():
        close = frame["close"].reindex(index).ffill().to_numpy(dtype=np.float64)
        total += np.log(close)
    return pd.Series(total / len(candles_by_symbol), index=index, name="mkt_log_level")


def _cross_features(panel: pd.Series | None, index: pd.DatetimeIndex, own_ret: pd.Series) -> dict[str, pd.Series]:
    """The market's return on this symbol's bars, its 6-bar sum and this symbol's excess return."""
    if panel is None:
        return {}
    missing = index.difference(panel.index)
    if len(missing):
        raise ModelError(f"market panel lacks {len(missing)} of the symbol's bars (first {missing[0]}): "
                         "it was built from other candles")
    level = panel.reindex(index).to_numpy()
    market = pd.Series(np.concatenate([[np.nan], np.diff(level)]), index=index)
    return {"mkt_ret": market, "mkt_mom_6": market.rolling(CROSS_MOMENTUM_WINDOW).sum(),
            "excess_ret": own_ret - market}


def symbol_features(candles: pd.DataFrame, symbol: str, panel: pd.Series | None) -> pd.DataFrame:
    """Feature frame of one symbol on its own bars, with the shared market ``panel``.

    Own features (returns, momentum, realised volatility, RSI, MACD, Bollinger %B, ATR,
    volume z-scores, time of day/week) come first, then the cross-symbol ones (the market
    average return, its 6-bar sum, and this symbol's return in excess of the market).
    Warm-up rows hold NaN.
    """
    _check_candles(candles, symbol)
    own = _own_features(candles)
    cross = _cross_features(panel, candles.index, own["ret_lag1"])
    features = pd.DataFrame({**own, **cross}, index=candles.index)
    return features.replace([np.inf, -np.inf], np.nan).astype(np.float64)


def build_features(candles_by_symbol: Mapping[str, pd.DataFrame], symbol: str) -> pd.DataFrame:
    """:func:`symbol_features` of ``symbol`` with the panel of every symbol given."""
    if symbol not in candles_by_symbol:
        raise ModelError(f"no candles for symbol {symbol!r}; have {sorted(candles_by_symbol)}")
    return symbol_features(candles_by_symbol[symbol], symbol, market_panel(candles_by_symbol))
