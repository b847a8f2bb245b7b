"""RSI reversion: long when Wilder's RSI is oversold, short when overbought, else flat."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import rsi


class RsiReversion(Strategy):
    name = "rsi_reversion"
    category = "mean_reversion"
    description = "Wilder RSI(period) < lower -> long, > upper -> short, otherwise flat."
    params = {"period": 14, "lower": 30.0, "upper": 70.0}
    param_space = {"period": (2, 100), "lower": (5.0, 45.0), "upper": (55.0, 95.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        strength = rsi(candles["close"], int(self.params["period"]))  # flat window: NaN -> no position
        position = pd.Series(0.0, index=candles.index)
        position[strength < float(self.params["lower"])] = 1.0
        position[strength > float(self.params["upper"])] = -1.0
        return position
