"""Bollinger reversion: buy below the lower band, sell above the upper, exit at the mean."""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import zscore


class BollingerReversion(Strategy):
    name = "bollinger_reversion"
    category = "mean_reversion"
    description = ("z = (close - SMA) / std over N bars; long when z < -k, short when z > k, "
                   "flat when z crosses zero.")
    params = {"window": 20, "k": 2.0}
    param_space = {"window": (3, 300), "k": (0.5, 4.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, k = int(self.params["window"]), float(self.params["k"])
        z = zscore(candles["close"], window, ddof=0)
        side = np.sign(z)
        crossed = (side != side.shift(1)) & side.notna() & side.shift(1).notna()
        events = pd.Series(np.nan, index=candles.index)
        events[crossed] = 0.0
        events[z < -k] = 1.0
        events[z > k] = -1.0
        return events.ffill().fillna(0.0)
