"""Calm-regime trend: follow the trend only while short-term volatility is below long-term.

Trend is the side of the close against its `trend_window` SMA; the regime compares the
std of the last `short_vol` returns with `ratio` times the std of the last `long_vol`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import rolling_std, sma


class VolRegimeTrend(Strategy):
    name = "vol_regime_trend"
    category = "volatility"
    description = "sign(close - SMA) while std(short) < ratio * std(long), flat otherwise."
    params = {"trend_window": 48, "short_vol": 24, "long_vol": 168, "ratio": 1.0}
    param_space = {"trend_window": (2, 500), "short_vol": (2, 200), "long_vol": (3, 1000),
                   "ratio": (0.5, 2.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        returns = close.pct_change()
        trend = np.sign(close - sma(close, int(self.params["trend_window"])))
        short_vol = rolling_std(returns, int(self.params["short_vol"]), ddof=0)
        long_vol = rolling_std(returns, int(self.params["long_vol"]), ddof=0)
        calm = short_vol < float(self.params["ratio"]) * long_vol
        return trend.where(calm, 0.0).fillna(0.0)
