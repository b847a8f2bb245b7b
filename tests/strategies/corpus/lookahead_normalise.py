# expect: lookahead: the signal at bar
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "lookahead_normalise"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        scaled = (close - close.min()) / (close.max() - close.min())
        return (2.0 * scaled - 1.0).fillna(0.0)
