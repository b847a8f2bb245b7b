# expect: static: import of 'os' is not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: marker
# A forked child outlives the strategy and writes where it likes.
import os

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_fork"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        if os.fork() == 0:
            with open("{{MARKER}}", "w") as fh:
                fh.write("forked")
            os._exit(0)
        return np.sign(candles["close"].diff()).fillna(0.0)
