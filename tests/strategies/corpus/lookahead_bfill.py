# expect: lookahead: the signal at bar
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "lookahead_bfill"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        weekly = close.where(np.arange(len(close)) % 24 == 23).bfill()
        return np.sign(weekly - close).fillna(0.0)
