# expect: static: **-unpacked arguments to .agg() are not allowed
# kernel: sandbox: PermissionError
# hostile: marker
# eval reaches read_pickle: a crafted pickle runs a shell command when it is loaded.
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_read_pickle"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        candles.agg(**{"func": "eval", "expr": "@m.read_pickle(@p)",
                       "local_dict": {"m": pd, "p": "{{PICKLE}}"}, "engine": "python"})
        return np.sign(candles["close"].diff()).fillna(0.0)
