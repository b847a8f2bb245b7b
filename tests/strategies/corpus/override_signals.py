# expect: static: overriding 'signals' is not allowed
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "override_signals"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return candles["close"] * 0.0

    def signals(self, candles):
        return candles["close"] * 100.0
