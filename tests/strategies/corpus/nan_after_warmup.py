# expect: sandbox: strategy 'nan_after_warmup' returned NaN at bar 7 
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "nan_after_warmup"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        signal = pd.Series(1.0, index=candles.index)
        signal.iloc[7::50] = np.nan
        return signal
