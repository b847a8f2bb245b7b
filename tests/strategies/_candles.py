"""Hand-made candle tables for the strategy tests."""
from __future__ import annotations

from typing import Sequence

import pandas as pd


def make_candles(
    close: Sequence[float],
    *,
    open: Sequence[float] | None = None,  # noqa: A002 - the column's name
    high: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    volume: Sequence[float] | None = None,
    start: str = "2024-01-01",
    freq: str = "1h",
) -> pd.DataFrame:
    """Candles in the project's convention; missing columns default to the close."""
    n = len(close)
    frame = pd.DataFrame(
        {
            "open": list(open) if open is not None else list(close),
            "high": list(high) if high is not None else list(close),
            "low": list(low) if low is not None else list(close),
            "close": list(close),
            "volume": list(volume) if volume is not None else [1.0] * n,
        },
        index=pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts"),
    )
    return frame.astype("float64")
