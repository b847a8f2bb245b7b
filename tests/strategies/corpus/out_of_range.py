# expect: sandbox: strategy 'out_of_range' returned -2.0 at bar 1 (2024-01-01 01:00:00+00:00), outside [-1, 1]
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "out_of_range"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return 2.0 * np.sign(candles["close"].diff()).fillna(0.0)
