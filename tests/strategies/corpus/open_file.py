# expect: static: use of forbidden builtin 'open'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "open_file"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        secret = open("/etc/passwd").read()
        return candles["close"] * 0.0
