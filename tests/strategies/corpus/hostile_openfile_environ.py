# expect: static: import from 'numpy.ma.mrecords' is not allowed
# kernel: sandbox: PermissionError
# hostile: stolen
# The worker's environment (Airflow connections, API keys) through /proc/<pid>/environ.
import numpy as np
import pandas as pd
from numpy.ma.mrecords import openfile

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_openfile_environ"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        stolen = ""
        for path in ("/proc/{{PID}}/environ", "/proc/self/environ"):
            stolen += openfile(path).read().replace("\0", " ")
        raise ValueError("stolen " + stolen[-3000:])
