"""Vectorized backtester and performance metrics."""
from __future__ import annotations

from blofin_pipeline.backtest.engine import (
    DEFAULT_FEE,
    BacktestResult,
    cost_rates,
    infer_periods_per_year,
    run_backtest,
    run_backtest_grid,
)

__all__ = [
    "DEFAULT_FEE",
    "BacktestResult",
    "cost_rates",
    "infer_periods_per_year",
    "run_backtest",
    "run_backtest_grid",
]
