from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from blofin_pipeline.backtest import run_backtest, run_backtest_grid
from blofin_pipeline.backtest.engine import GRID_METRICS
from blofin_pipeline.exceptions import BacktestError
from tests.backtest.helpers import make_candles, random_walk

PPY_HOURLY = 365 * 24


def _grid_positions(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = []
    for _ in range(k):
        hold = int(rng.integers(1, 40))
        levels = rng.choice([-1.0, -0.5, 0.0, 0.25, 1.0], size=n // hold + 1)
        cols.append(np.repeat(levels, hold)[:n])
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("fee_model", ["linear", "vectorbt"])
@pytest.mark.parametrize("chunk_elements", [1, 3000, 10_000_000])
def test_grid_equals_run_backtest_column_by_column(fee_model, chunk_elements):
    n, k = 1500, 7
    close = random_walk(n, seed=1)
    pos = _grid_positions(n, k, seed=2)
    grid = run_backtest_grid(close, pos, 0.0008, 0.0002, PPY_HOURLY, fee_model=fee_model,
                             chunk_elements=chunk_elements)
    assert set(grid) == set(GRID_METRICS)
    candles = make_candles(close)
    for j in range(k):
        single = run_backtest(candles, pos[:, j], 0.0008, 0.0002, fee_model=fee_model).metrics
        for key in GRID_METRICS:
            assert grid[key][j] == pytest.approx(single[key], rel=1e-9, abs=1e-12, nan_ok=True), (key, j)


@pytest.mark.parametrize("dtype", [np.int8, np.float32, np.bool_])
def test_grid_accepts_compact_dtypes(dtype):
    n = 800
    close = random_walk(n, seed=3)
    base = _grid_positions(n, 4, seed=4)
    compact = (base > 0) if dtype is np.bool_ else np.sign(base).astype(dtype)
    ref = run_backtest_grid(close, compact.astype(np.float64), periods_per_year=PPY_HOURLY)
    got = run_backtest_grid(close, np.asfortranarray(compact), periods_per_year=PPY_HOURLY)
    for key in GRID_METRICS:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-12, equal_nan=True)


def test_grid_with_no_trades_and_always_long():
    close = random_walk(300, seed=5)
    pos = np.zeros((300, 2))
    pos[:, 1] = 1.0
    grid = run_backtest_grid(close, pos, fee=0.0, periods_per_year=PPY_HOURLY)
    assert grid["n_trades"].tolist() == [0, 1]
    assert grid["total_return"][0] == 0.0
    assert np.isnan(grid["sharpe"][0]) and np.isnan(grid["win_rate"][0])
    assert grid["total_return"][1] == pytest.approx(close[-1] / close[0] - 1, rel=1e-12)


def test_grid_timeframe_annualisation():
    close = random_walk(300, seed=6)
    pos = _grid_positions(300, 2, seed=6)
    a = run_backtest_grid(close, pos, timeframe="1H")
    b = run_backtest_grid(close, pos, periods_per_year=PPY_HOURLY)
    np.testing.assert_allclose(a["sharpe"], b["sharpe"])
    with pytest.raises(BacktestError, match="periods_per_year or timeframe"):
        run_backtest_grid(close, pos)


@pytest.mark.parametrize("bad", [np.nan, 2.0, -3.0])
def test_grid_rejects_bad_positions(bad):
    close = random_walk(50, seed=7)
    pos = np.zeros((50, 3))
    pos[10, 2] = bad
    with pytest.raises(BacktestError, match="columns 0..2"):
        run_backtest_grid(close, pos, periods_per_year=PPY_HOURLY)


def test_grid_rejects_misshaped_positions():
    with pytest.raises(BacktestError, match="shape"):
        run_backtest_grid(random_walk(50), np.zeros((49, 3)), periods_per_year=PPY_HOURLY)


def test_grid_peak_memory_is_bounded_by_the_chunk_not_the_grid():
    n, k = 200_000, 40
    close = random_walk(n, seed=8, vol=0.001)
    rng = np.random.default_rng(8)
    pos = np.asfortranarray(np.repeat(rng.integers(-1, 2, (n // 50, k)), 50, axis=0).astype(np.int8))
    chunk = 400_000  # two columns at a time
    tracemalloc.start()
    try:
        run_backtest_grid(close, pos, periods_per_year=525_600, chunk_elements=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a float64 copy of the whole grid would be n * k * 8 = 64 MB
    assert peak < 12 * chunk * 8, f"peak {peak / 1e6:.1f} MB"
