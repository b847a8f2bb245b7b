# expect: static: import of 'subprocess' is not allowed
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
import subprocess


class Corpus(Strategy):
    name = "import_subprocess"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        subprocess.run(["id"])
        return candles["close"] * 0.0
