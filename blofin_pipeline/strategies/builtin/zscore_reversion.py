"""Z-score reversion with a fractional position: -z / entry_z, clipped to [-1, 1]."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import zscore


class ZscoreReversion(Strategy):
    name = "zscore_reversion"
    category = "mean_reversion"
    description = "Position -z/entry_z (clipped), z = close's N-bar z-score; full size at |z| >= entry_z."
    params = {"window": 50, "entry_z": 2.0}
    param_space = {"window": (3, 500), "entry_z": (0.5, 4.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, entry_z = int(self.params["window"]), float(self.params["entry_z"])
        z = zscore(candles["close"], window, ddof=0)
        return (-z / entry_z).clip(-1.0, 1.0).fillna(0.0)
