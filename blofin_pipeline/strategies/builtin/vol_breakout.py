"""Volatility breakout: follow a bar whose return is k times the recent return std.

The band uses the std of the `window` returns BEFORE the bar; the position is held for
`hold` bars (the breakout bar included) unless a new breakout replaces it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import rolling_std


class VolBreakout(Strategy):
    name = "vol_breakout"
    category = "volatility"
    description = "|return| > k * std(previous N returns) -> follow its sign for `hold` bars."
    params = {"window": 24, "k": 2.5, "hold": 6}
    param_space = {"window": (2, 500), "k": (1.0, 6.0), "hold": (1, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        window, k, hold = int(self.params["window"]), float(self.params["k"]), int(self.params["hold"])
        returns = candles["close"].pct_change()
        band = k * rolling_std(returns, window, ddof=0).shift(1)
        events = pd.Series(np.nan, index=candles.index)
        breakout = returns.abs() > band
        events[breakout] = np.sign(returns[breakout])
        if hold > 1:
            events = events.ffill(limit=hold - 1)
        return events.fillna(0.0)
