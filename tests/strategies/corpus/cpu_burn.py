# expect: sandbox: exceeded the CPU time limit of 1 s
# options: timeout=30 cpu_seconds=1
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "cpu_burn"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        total = 0
        for i in range(10**12):
            total += i * i
        return candles["close"] * 0.0
