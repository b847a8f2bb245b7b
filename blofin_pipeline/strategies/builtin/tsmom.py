"""Time-series momentum with volatility scaling (Moskowitz, Ooi and Pedersen style).

Direction: the sign of the log return over `lookback` bars. Size: target per-bar
volatility over the realised per-bar volatility of the last `vol_window` log returns,
capped at 1.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import log_momentum, realised_volatility


class TimeSeriesMomentum(Strategy):
    name = "tsmom"
    category = "momentum"
    description = "sign(lookback log return) * min(1, target_vol / realised vol)."
    params = {"lookback": 48, "vol_window": 48, "target_vol": 0.01}
    param_space = {"lookback": (2, 1000), "vol_window": (2, 1000),
                   "target_vol": (0.001, 0.05)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        lookback = int(self.params["lookback"])
        vol_window = int(self.params["vol_window"])
        close = candles["close"]
        direction = np.sign(log_momentum(close, lookback))
        realised = realised_volatility(close, vol_window, ddof=0)
        # realised == 0 gives inf, capped to full size by the min.
        size = np.minimum(1.0, float(self.params["target_vol"]) / realised)
        return (direction * size).fillna(0.0)
