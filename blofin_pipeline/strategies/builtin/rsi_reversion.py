"""RSI reversion: long when Wilder's RSI is oversold, short when overbought, else flat."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy


class RsiReversion(Strategy):
    name = "rsi_reversion"
    category = "mean_reversion"
    description = "Wilder RSI(period) < lower -> long, > upper -> short, otherwise flat."
    params = {"period": 14, "lower": 30.0, "upper": 70.0}
    param_space = {"period": (2, 100), "lower": (5.0, 45.0), "upper": (55.0, 95.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        period = int(self.params["period"])
        delta = candles["close"].diff()
        alpha = 1.0 / period  # Wilder's smoothing
        avg_gain = delta.clip(lower=0).ewm(alpha=alpha, adjust=False, min_periods=period).mean()
        avg_loss = (-delta).clip(lower=0).ewm(alpha=alpha, adjust=False,
                                               min_periods=period).mean()
        rsi = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)  # no losses -> 100; flat -> NaN
        position = pd.Series(0.0, index=candles.index)
        position[rsi < float(self.params["lower"])] = 1.0
        position[rsi > float(self.params["upper"])] = -1.0
        return position
