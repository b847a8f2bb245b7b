"""A deterministic, realistic candle frame for checking strategies without a database."""
from __future__ import annotations

import numpy as np
import pandas as pd

CHECK_BARS = 3200  # enough for the lookahead gate (gate.GateSpans().required_bars = 3022)
CHECK_SEED = 20240601


def check_candles(n_bars: int = CHECK_BARS, *, seed: int = CHECK_SEED,
                  freq: str = "1h", start: str = "2024-01-01") -> pd.DataFrame:
    """Hourly random-walk OHLCV (fat tails, volatility clusters, volume tied to moves).

    Same seed, same frame: check results are reproducible. Columns and index follow
    the project's candles convention (UTC index named "ts", float64 columns).
    """
    rng = np.random.default_rng(seed)
    # GARCH-like volatility clustering on Student-t shocks.
    shocks = rng.standard_t(df=4, size=n_bars) / np.sqrt(2.0)
    vol = np.empty(n_bars)
    returns = np.empty(n_bars)
    level = 0.006
    for i in range(n_bars):
        level = 0.0005 + 0.90 * level + 0.08 * (abs(returns[i - 1]) if i else level)
        vol[i] = level
        returns[i] = vol[i] * shocks[i]
    close = 30_000.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[30_000.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.5, size=n_bars)) * vol * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.5, size=n_bars)) * vol * close
    volume = rng.lognormal(mean=3.0, sigma=0.4, size=n_bars) * (1.0 + 40.0 * np.abs(returns))
    index = pd.date_range(start, periods=n_bars, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index,
    ).astype("float64")
