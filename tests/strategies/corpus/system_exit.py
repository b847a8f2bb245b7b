# expect: static: use of forbidden builtin 'SystemExit'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "system_exit"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        raise SystemExit(3)
