"""EMA crossover: long while the fast EMA is above the slow EMA, short while below."""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import ema


class EmaCross(Strategy):
    name = "ema_cross"
    category = "trend"
    description = "Long when EMA(fast) > EMA(slow), short when below; flat during warm-up."
    params = {"fast": 12, "slow": 26}
    param_space = {"fast": (2, 50), "slow": (3, 200)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        close = candles["close"]
        position = np.sign(ema(close, fast) - ema(close, slow))
        return position.fillna(0.0)
