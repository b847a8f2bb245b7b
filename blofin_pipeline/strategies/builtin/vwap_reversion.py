"""Rolling-VWAP reversion: fade closes that stretch more than a threshold from the VWAP."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy


class VwapReversion(Strategy):
    name = "vwap_reversion"
    category = "mean_reversion"
    description = ("VWAP of the typical price over N bars; long when close < VWAP*(1-t), "
                   "short when close > VWAP*(1+t), else flat.")
    params = {"window": 24, "threshold": 0.01}
    param_space = {"window": (2, 500), "threshold": (0.001, 0.1)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, threshold = int(self.params["window"]), float(self.params["threshold"])
        typical = (candles["high"] + candles["low"] + candles["close"]) / 3.0
        volume = candles["volume"]
        volume_sum = volume.rolling(window).sum()
        vwap = (typical * volume).rolling(window).sum() / volume_sum.where(volume_sum > 0)
        deviation = candles["close"] / vwap - 1.0
        position = pd.Series(0.0, index=candles.index)
        position[deviation < -threshold] = 1.0
        position[deviation > threshold] = -1.0
        return position
