# expect: lookahead: non-deterministic
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "nondeterministic"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        noise = np.random.default_rng().uniform(-1.0, 1.0, len(candles))
        return pd.Series(noise, index=candles.index)
