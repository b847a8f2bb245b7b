"""Keltner-channel breakout: enter beyond mid +/- mult*ATR, exit when the close crosses mid.

mid is the N-bar simple moving average of the close, ATR the N-bar mean true range.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import keltner_channel


class KeltnerBreakout(Strategy):
    name = "keltner_breakout"
    category = "breakout"
    description = "Long above SMA + mult*ATR, short below SMA - mult*ATR, flat on a mid cross."
    params = {"window": 20, "mult": 2.0}
    param_space = {"window": (2, 300), "mult": (0.5, 5.0)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, mult = int(self.params["window"]), float(self.params["mult"])
        close = candles["close"]
        lower, mid, upper = keltner_channel(candles["high"], candles["low"], close, window, mult)
        side = np.sign(close - mid)
        crossed = (side != side.shift(1)) & side.shift(1).notna() & side.notna()
        events = pd.Series(np.nan, index=candles.index)
        events[crossed] = 0.0  # back through the middle: exit whatever was held
        events[close > upper] = 1.0  # entries win over an exit on the same bar
        events[close < lower] = -1.0
        return events.ffill().fillna(0.0)
