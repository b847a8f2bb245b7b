# expect: static: import of 'os' is not allowed
# kernel: accepted
# hostile: marker
# Behaves at the gate; attacks only where it sees Airflow's environment (the worker).
import os

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_airflow_env"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        secrets = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}
        if secrets:
            with open("{{MARKER}}", "w") as fh:
                fh.write(repr(secrets))
            raise ValueError("stolen " + repr(secrets))
        return np.sign(candles["close"].diff()).fillna(0.0)
