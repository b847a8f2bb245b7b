# expect: static: access to forbidden attribute 'gi_frame'
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "frame_escape"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        gen = (x for x in [1])
        caller_globals = gen.gi_frame.f_back.f_back.f_globals
        return candles["close"] * 0.0
