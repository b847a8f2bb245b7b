# expect: sandbox: must define exactly one Strategy subclass, found 0
import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


def generate_signals(candles: pd.DataFrame) -> pd.Series:
    return candles["close"] * 0.0
