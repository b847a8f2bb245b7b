# expect: sandbox: category 'arbitrage' is not one of
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "bad_category"
    category = "arbitrage"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return candles["close"] * 0.0
