# expect: sandbox: exceeded the memory limit of 512 MB
# options: memory_mb=512
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Corpus(Strategy):
    name = "memory_bomb"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        hoard = []
        while True:
            hoard.append(bytearray(32 * 1024 * 1024))
        return candles["close"] * 0.0
