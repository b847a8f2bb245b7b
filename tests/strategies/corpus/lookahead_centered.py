# expect: lookahead: the signal at bar
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "lookahead_centered"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        smooth = close.rolling(self.params["window"], center=True).mean()
        return np.sign(close - smooth).fillna(0.0)
