# expect: lookahead: with parameters {'lag': -
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    """Causal at its default lag 0; a negative lag (inside param_space) reads the future."""

    name = "lookahead_param_lag"
    category = "momentum"
    params = {"lag": 0}
    param_space = {"lag": (-2, 2)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        return np.sign(candles["close"].pct_change().shift(self.params["lag"])).fillna(0.0)
