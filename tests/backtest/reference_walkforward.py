"""The walk-forward loop as it was before signals were shared across folds (reference only).

Every fold computed each candidate's signal on its training window, backtested it alone,
then computed the chosen one's signal again on training + test window. Kept here so the
shared-signal implementation can be checked against it: on anchored folds they must agree
exactly, and on rolling folds exactly too once the reference is given the signals of the
whole window (`full_window`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.backtest import stats
from blofin_pipeline.backtest.engine import BacktestResult, infer_periods_per_year, run_backtest
from blofin_pipeline.backtest.walkforward import (
    FoldResult,
    SignalFn,
    WalkForwardResult,
    _objective_value,
    _trial_sharpe_std,
    fold_bounds,
    sample_candidates,
)
from blofin_pipeline.exceptions import BacktestError, PipelineError


def full_window(signal_fn: SignalFn, candles: pd.DataFrame) -> SignalFn:
    """A signal function answering any window of `candles` with the slice of the signal
    computed on the whole of `candles` (what a causal strategy says at each bar given all
    bars before it)."""
    cache: dict[str, pd.Series] = {}

    def sliced(window: pd.DataFrame, params: dict) -> pd.Series:
        key = repr(sorted(params.items()))
        if key not in cache:
            cache[key] = signal_fn(candles, dict(params))
        start = candles.index.get_loc(window.index[0])
        return cache[key].iloc[start:start + len(window)]

    return sliced


def reference_walk_forward(candles: pd.DataFrame, signal_fn: SignalFn, defaults: Mapping[str, Any],
                           param_space: Mapping[str, tuple], *, n_folds: int = 4, train_frac: float = 0.5,
                           anchored: bool = False, n_candidates: int = 8, seed: int = 0, fee: float = 0.0006,
                           slippage: float = 0.0, timeframe: str | None = None,
                           objective: str = "sharpe") -> WalkForwardResult:
    candidates = sample_candidates(defaults, param_space, n_candidates, seed)
    bounds = fold_bounds(len(candles), n_folds, int(len(candles) * train_frac), anchored)
    trial_sharpes = np.full((n_folds, len(candidates)), np.nan)
    folds, tests, level = [], [], 1.0
    for k, (tr0, tr1, te0, te1) in enumerate(bounds):
        train = candles.iloc[tr0:tr1]
        scores = np.full(len(candidates), np.nan)
        for i, params in enumerate(candidates):
            try:
                res = run_backtest(train, signal_fn(train, dict(params)), fee, slippage, timeframe=timeframe)
            except (PipelineError, ValueError) as err:
                if i == 0:
                    raise BacktestError(f"default parameters {params!r} failed on fold {k}: {err}") from err
                continue
            scores[i] = _objective_value(res.metrics.get(objective))
            trial_sharpes[k, i] = res.metrics["sharpe"]
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        history = candles.iloc[tr0:te1]
        test_signal = signal_fn(history, dict(candidates[best])).iloc[te0 - tr0:].copy()
        test_signal.iloc[-1] = 0.0
        test_res: BacktestResult = run_backtest(candles.iloc[te0:te1], test_signal, fee, slippage,
                                                timeframe=timeframe)
        tests.append((test_res, level))
        level *= float(test_res.equity.iloc[-1])
        folds.append(FoldResult(k, train.index[0], train.index[-1], candles.index[te0], candles.index[te1 - 1],
                                dict(candidates[best]), float(scores[best]), dict(test_res.metrics)))
    ppy = infer_periods_per_year(candles.index, timeframe)
    oos_returns, oos_equity, metrics = _chained_metrics(tests, ppy)
    std = _trial_sharpe_std(trial_sharpes, ppy)
    r = oos_returns.to_numpy()
    metrics.update({"psr": stats.psr_from_returns(r), "dsr": stats.deflated_sharpe_ratio(r, len(candidates), std),
                    "n_trials": len(candidates), "trial_sharpe_std": std, "n_folds": n_folds,
                    "oos_bars": int(r.size)})
    return WalkForwardResult(oos_returns, oos_equity, metrics, folds, len(candidates), trial_sharpes, std,
                             candidates)


def _chained_metrics(tests: list[tuple[BacktestResult, float]], ppy: float
                     ) -> tuple[pd.Series, pd.Series, dict[str, float]]:
    """Chain the folds' test results: out-of-sample returns, equity and their metrics."""
    oos_returns = pd.concat([t.returns for t, _ in tests]).rename("oos_returns")
    r = oos_returns.to_numpy()
    oos_equity = pd.Series(np.cumprod(1.0 + r), index=oos_returns.index, name="oos_equity")
    positions = np.concatenate([t.positions.to_numpy() for t, _ in tests])
    trades = [(t.trades, level) for t, level in tests if len(t.trades)]
    trade_returns = np.concatenate([t["return"].to_numpy() for t, _ in trades]) if trades else np.empty(0)
    trade_pnl = np.concatenate([t["pnl"].to_numpy() * lvl for t, lvl in trades]) if trades else np.empty(0)
    fees_paid = sum(t.metrics["fees_paid"] * level for t, level in tests)
    metrics: dict[str, float] = {
        "total_return": float(oos_equity.iloc[-1] - 1.0),
        "cagr": m.cagr(r, ppy),
        "sharpe": m.sharpe_ratio(r, ppy),
        "sortino": m.sortino_ratio(r, ppy),
        "volatility": m.annual_volatility(r, ppy),
        "max_drawdown": m.max_drawdown(r),
        "calmar": m.calmar_ratio(r, ppy),
        "win_rate": m.win_rate(trade_returns),
        "profit_factor": m.profit_factor(trade_pnl),
        "n_trades": int(trade_returns.size),
        "exposure": m.exposure(positions),
        "turnover": m.turnover(positions, ppy),
        "fees_paid": float(fees_paid),
    }
    return oos_returns, oos_equity, metrics

