"""Rate-of-change momentum: follow the N-bar return when it clears a threshold."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import roc


class RocMomentum(Strategy):
    name = "roc_momentum"
    category = "momentum"
    description = "ROC = close / close N bars ago - 1; long above +t, short below -t, else flat."
    params = {"window": 24, "threshold": 0.0}
    param_space = {"window": (1, 500), "threshold": (0.0, 0.2)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, threshold = int(self.params["window"]), float(self.params["threshold"])
        change = roc(candles["close"], window)
        position = pd.Series(0.0, index=candles.index)
        position[change > threshold] = 1.0
        position[change < -threshold] = -1.0
        return position
