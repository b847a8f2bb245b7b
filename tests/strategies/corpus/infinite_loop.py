# expect: sandbox: timed out after
# options: timeout=2
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "infinite_loop"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        count = 0
        while count >= 0:
            count += 1
        return candles["close"] * 0.0
