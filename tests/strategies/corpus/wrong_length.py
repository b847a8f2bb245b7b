# expect: sandbox: strategy 'wrong_length' returned 3199 values for 3200 candles
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "wrong_length"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return np.sign(candles["close"].diff()).fillna(0.0).iloc[1:]
