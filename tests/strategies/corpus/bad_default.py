# expect: sandbox: parameter 'window'=500 outside its range [2, 100]
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "bad_default"
    category = "trend"
    params = {"window": 500}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return candles["close"] * 0.0
