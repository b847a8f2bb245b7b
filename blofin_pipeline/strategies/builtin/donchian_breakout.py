"""Donchian breakout: long on a close above the previous N-bar high, short below the low.

The position is held until the opposite breakout (a stop-and-reverse channel system).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import donchian_channel


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    category = "breakout"
    description = "Close above the prior N-bar high -> long, below the prior low -> short."
    params = {"window": 20}
    param_space = {"window": (2, 300)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window = int(self.params["window"])
        # Channel of the N bars BEFORE this one, so the breakout bar is not in it.
        lower, upper = donchian_channel(candles["high"], candles["low"], window)
        close = candles["close"]
        events = pd.Series(np.nan, index=candles.index)
        events[close > upper] = 1.0
        events[close < lower] = -1.0
        return events.ffill().fillna(0.0)
