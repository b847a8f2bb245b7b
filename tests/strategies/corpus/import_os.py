# expect: static: import of 'os' is not allowed
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
import os


class Corpus(Strategy):
    name = "import_os"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        os.system("touch /tmp/pwned")
        return candles["close"] * 0.0
