# expect: lookahead: dense recent check
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    """Honest trend-following, except on volume spikes (volume above its causal 99.8%
    quantile, about 0.2% of bars), where it reads the next bar's close."""

    name = "lookahead_sparse_volume"
    category = "volume"
    params = {"window": 24}
    param_space = {"window": (5, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close, volume = candles["close"], candles["volume"]
        trend = np.sign(close - close.rolling(self.params["window"]).mean()).fillna(0.0)
        spike = volume > volume.expanding(min_periods=200).quantile(0.998).shift(1)
        peek = np.sign(close.shift(-1) - close).fillna(0.0)
        return trend.where(~spike, peek)
