# expect: static: import of 'os' is not allowed
# kernel: sandbox: PermissionError
# hostile: killed
# Kill the process that runs the pipeline (its parent, and the test process itself).
import os
import signal

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_kill_parent"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        os.kill(int("{{VICTIM}}"), signal.SIGTERM)
        return np.sign(candles["close"].diff()).fillna(0.0)
