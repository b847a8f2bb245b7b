# expect: static: import of 'os' is not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: marker
# Replace the process with a shell.
import os

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_exec"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        os.execv("/bin/sh", ["sh", "-c", "touch {{MARKER}}"])
        return np.sign(candles["close"].diff()).fillna(0.0)
