# expect: sandbox: strategy 'returns_ndarray' returned ndarray, expected a pandas Series
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "returns_ndarray"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return np.zeros(len(candles))
