# expect: static: access to forbidden attribute 'load'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "numpy_io"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        data = np.load("/tmp/anything.npy", allow_pickle=True)
        return candles["close"] * 0.0
