"""Honest evaluation for the tuner: each symbol's candles split in time into a tuning part
and a held-out part the search never sees.

`walk_forward_objective` scores fixed parameters on the tuning part (the search's
objective); `heldout_metrics` judges parameters on the held-out part, with signals
computed on the full history so indicators are warm but only held-out bars backtested.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.backtest.walkforward import walk_forward
from blofin_pipeline.costs import Costs
from blofin_pipeline.exceptions import ConfigError

HOLDOUT = 0.3               # share of each symbol's bars held out from tuning
N_FOLDS = 3                 # walk-forward folds inside the tuning part
WF_WARMUP = 0.2             # share of the tuning part that only warms indicators up
MIN_BARS_PER_PART = 200     # both parts need at least this many bars per symbol

#: Metrics averaged over symbols in before/after summaries.
SUMMARY_METRICS = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar",
                   "win_rate", "profit_factor", "exposure", "turnover", "fees_paid")

SignalFn = Callable[[pd.DataFrame, Mapping[str, Any]], pd.Series]


def split_candles(candles: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tuning part, held-out part) of one symbol's candles, split in time."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"tuner: holdout must be in (0, 1), got {holdout!r}")
    cut = int(round(len(candles) * (1.0 - holdout)))
    return candles.iloc[:cut], candles.iloc[cut:]


def last_bar(candles_by_symbol: Mapping[str, pd.DataFrame]) -> str:
    """The last bar any symbol's candles hold (ISO timestamp): a tuned version's fitted_until,
    since its search, hold-out and keep decision saw no later bar."""
    return max(candles.index[-1] for candles in candles_by_symbol.values()).isoformat()


def _summary(per_symbol: Mapping[str, Mapping[str, Any]], objective: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = set(SUMMARY_METRICS) | {objective}
    for key in sorted(keys):
        values = [float(m[key]) for m in per_symbol.values()
                  if key in m and m[key] is not None and math.isfinite(float(m[key]))]
        out[key] = float(np.mean(values)) if values else float("nan")
    out["n_trades"] = int(sum(int(m.get("n_trades") or 0) for m in per_symbol.values()))
    out["objective"] = out[objective]
    out["per_symbol"] = {s: {k: _jsonable(v) for k, v in m.items()} for s, m in per_symbol.items()}
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


def heldout_metrics(
    fn: SignalFn, params: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame], *,
    holdout: float, costs: Costs, objective: str,
) -> dict[str, Any]:
    """Metrics of `params` on each symbol's held-out part, signals warmed on the full history."""
    per_symbol = {}
    for symbol, candles in candles_by_symbol.items():
        _, held = split_candles(candles, holdout)
        positions = fn(candles, dict(params)).reindex(held.index)
        result = run_backtest(held, positions, fee=costs.fee, slippage=costs.slippage, timeframe=costs.timeframe)
        per_symbol[symbol] = dict(result.metrics)
    return _summary(per_symbol, objective)


def walk_forward_objective(
    fn: SignalFn, params: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame], *,
    n_folds: int, costs: Costs, objective: str,
) -> float:
    """Mean over symbols of the chained walk-forward test-window objective of fixed `params`.

    The parameters are fixed (empty search space), so each fold's training window serves
    only to warm the indicators; the first WF_WARMUP share of the data is that warm-up.
    """
    values = []
    for candles in candles_by_symbol.values():
        result = walk_forward(candles, fn, dict(params), {}, n_folds=n_folds, train_frac=WF_WARMUP,
                              n_candidates=0, fee=costs.fee, slippage=costs.slippage, timeframe=costs.timeframe,
                              objective=objective)
        value = result.metrics.get(objective)
        values.append(float(value) if value is not None else float("nan"))
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
