"""Candle tables and price paths shared by the backtest tests."""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_candles(close: np.ndarray | list[float], freq: str = "1h") -> pd.DataFrame:
    """Candles on a UTC index named ts, every price column equal to close."""
    close = np.asarray(close, dtype=np.float64)
    index = pd.date_range("2024-01-01", periods=close.size, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )


def random_walk(n: int, seed: int = 0, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
