"""Volume spike: follow the candle's body when volume is k times its recent mean.

The mean is over the `window` bars BEFORE the bar; the position is held for `hold` bars.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import sma


class VolumeSpike(Strategy):
    name = "volume_spike"
    category = "volume"
    description = "volume > k * mean(previous N volumes) -> sign(close - open) for `hold` bars."
    params = {"window": 24, "k": 3.0, "hold": 3}
    param_space = {"window": (2, 500), "k": (1.2, 10.0), "hold": (1, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, k, hold = int(self.params["window"]), float(self.params["k"]), int(self.params["hold"])
        volume = candles["volume"]
        spike = volume > k * sma(volume, window).shift(1)
        body = np.sign(candles["close"] - candles["open"])
        events = pd.Series(np.nan, index=candles.index)
        events[spike] = body[spike]
        if hold > 1:
            events = events.ffill(limit=hold - 1)
        return events.fillna(0.0)
