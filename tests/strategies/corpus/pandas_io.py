# expect: static: access to forbidden attribute 'to_pickle'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "pandas_io"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        candles.to_pickle("/tmp/stolen.pkl")
        return candles["close"] * 0.0
