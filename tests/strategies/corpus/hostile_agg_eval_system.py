# expect: static: **-unpacked arguments to .agg() are not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: marker
# String-dispatched eval, reached through ** so no keyword is named: runs a shell command.
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_agg_eval_system"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        candles.agg(**{"func": "eval", "expr": "@m.io.common.os.system(@c)",
                       "local_dict": {"m": pd, "c": "touch {{MARKER}}"}, "engine": "python"})
        return np.sign(candles["close"].diff()).fillna(0.0)
