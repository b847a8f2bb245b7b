# expect: accepted
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "clean_sma_trend"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        sma = close.rolling(self.params["window"]).mean()
        return np.sign(close - sma).fillna(0.0)
