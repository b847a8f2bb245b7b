"""On-balance-volume trend: long while OBV is above its N-bar mean, short while below."""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import obv, sma


class ObvTrend(Strategy):
    name = "obv_trend"
    category = "volume"
    description = "OBV = cumulative volume signed by the close's change; sign(OBV - SMA(OBV, N))."
    params = {"window": 20}
    param_space = {"window": (2, 500)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window = int(self.params["window"])
        balance = obv(candles["close"], candles["volume"])
        return np.sign(balance - sma(balance, window)).fillna(0.0)
