# expect: static: access to dunder attribute '__class__'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "subclasses_escape"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        for sub in ().__class__.__bases__[0].__subclasses__():
            if sub.__name__ == "Popen":
                sub(["id"])
        return candles["close"] * 0.0
