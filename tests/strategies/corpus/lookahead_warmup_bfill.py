# expect: lookahead: dense warm-up check
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    """A moving-average trend whose warm-up is back-filled: its first bars use the first
    full window's mean, which is in their future. Causal everywhere else."""

    name = "lookahead_warmup_bfill"
    category = "trend"
    params = {"window": 48}
    param_space = {"window": (5, 200)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        mean = close.rolling(self.params["window"]).mean().bfill()
        return np.sign(close - mean).fillna(0.0)
