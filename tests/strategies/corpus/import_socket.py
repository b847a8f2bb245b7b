# expect: static: import from 'socket' is not allowed
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy
from socket import create_connection


class Corpus(Strategy):
    name = "import_socket"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        create_connection(("example.com", 80)).send(b"x")
        return candles["close"] * 0.0
