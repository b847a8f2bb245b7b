# expect: sandbox: strategy 'raises_error' failed in generate_signals: ZeroDivisionError
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "raises_error"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return candles["close"] * (1 / 0)
