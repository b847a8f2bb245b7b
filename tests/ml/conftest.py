"""Shared synthetic markets for the ML tests (small: 1H bars, a few thousand rows)."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from blofin_pipeline.market.sample import Edge, generate_candles
from blofin_pipeline.ml import MLConfig

# Idle OpenMP threads sleep instead of spinning. Two OpenMP runtimes end up loaded
# (scikit-learn's and LightGBM's); on a busy shared machine their spinning threads made
# the same fits 3-5x slower. Takes effect only if no OpenMP library is loaded yet (the
# imports above load none: blofin_pipeline.ml imports scikit-learn lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
START = pd.Timestamp("2024-01-01", tz="UTC")
RUN_DATE = "2026-11-24"
# Small and single-threaded: the honesty runs must stay quick on a busy 2-core machine.
FAST_CONFIG = MLConfig(
    symbols=("BTC-USDT",), tree_estimators=50, boost_rounds=60, n_jobs=1, timeframe="1H", seed=0,
)


def make_market(n_bars: int, *, seed: int = 0, edge: Edge | None = None) -> dict[str, pd.DataFrame]:
    end = START + pd.Timedelta(hours=n_bars)
    return {s: generate_candles(s, "1H", START, end, seed=seed, edge=edge) for s in SYMBOLS}


@pytest.fixture(scope="session")
def small_market() -> dict[str, pd.DataFrame]:
    return make_market(1500, seed=3)
