# expect: static: **-unpacked arguments to .apply() are not allowed
# kernel: sandbox: PermissionError
# hostile: marker
# String-dispatched to_pickle through **: writes any file the process may write.
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_apply_to_pickle"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        candles["close"].apply(**{"func": "to_pickle", "path": "{{MARKER}}"})
        return np.sign(candles["close"].diff()).fillna(0.0)
