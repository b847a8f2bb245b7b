"""Rolling-VWAP reversion: fade closes that stretch more than a threshold from the VWAP."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import rolling_vwap


class VwapReversion(Strategy):
    name = "vwap_reversion"
    category = "mean_reversion"
    description = ("VWAP of the typical price over N bars; long when close < VWAP*(1-t), "
                   "short when close > VWAP*(1+t), else flat.")
    params = {"window": 24, "threshold": 0.01}
    param_space = {"window": (2, 500), "threshold": (0.001, 0.1)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, threshold = int(self.params["window"]), float(self.params["threshold"])
        vwap = rolling_vwap(candles["high"], candles["low"], candles["close"], candles["volume"], window)
        deviation = candles["close"] / vwap - 1.0
        position = pd.Series(0.0, index=candles.index)
        position[deviation < -threshold] = 1.0
        position[deviation > threshold] = -1.0
        return position
