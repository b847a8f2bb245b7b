# expect: static: import of 'subprocess' is not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: survivor
# A grandchild in its own session survives a kill of the process group.
import subprocess

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_setsid_survivor"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        subprocess.Popen(["sleep", "{{SURVIVOR}}"], start_new_session=True)
        return np.sign(candles["close"].diff()).fillna(0.0)
