"""MACD trend: long while the MACD line is above its signal line, short while below."""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import ema, macd_line


class MacdTrend(Strategy):
    name = "macd_trend"
    category = "trend"
    description = "sign(MACD - signal), MACD = EMA(fast) - EMA(slow) of the close."
    params = {"fast": 12, "slow": 26, "signal": 9}
    param_space = {"fast": (2, 50), "slow": (3, 200), "signal": (2, 50)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        span = int(self.params["signal"])
        macd = macd_line(candles["close"], fast, slow)
        signal_line = ema(macd, span)
        return np.sign(macd - signal_line).fillna(0.0)
