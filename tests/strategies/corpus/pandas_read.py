# expect: static: access to forbidden attribute 'read_csv'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "pandas_read"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        other = pd.read_csv("/etc/hosts")
        return candles["close"] * 0.0
