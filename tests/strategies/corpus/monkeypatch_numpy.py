# expect: static: assignment to attribute 'isnan'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "monkeypatch_numpy"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        np.isnan = lambda values: values != values
        return candles["close"] * 0.0
