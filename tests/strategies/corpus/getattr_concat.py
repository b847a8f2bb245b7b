# expect: static: getattr() with a non-literal attribute name
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "getattr_concat"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        klass = getattr(candles, "__cla" + "ss__")
        return candles["close"] * 0.0
