# expect: static: import from 'numpy.ma.mrecords' is not allowed
# kernel: sandbox: PermissionError
# hostile: stolen
# numpy.ma.mrecords.openfile opens any file; the content leaves in an error message.
import numpy as np
import pandas as pd
from numpy.ma.mrecords import openfile

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_openfile_passwd"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        stolen = openfile("/etc/passwd").read()
        raise ValueError("stolen " + stolen[:200])
