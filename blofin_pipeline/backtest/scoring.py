"""`score_strategies` and `backtest_candidates`: out-of-sample scores into the database.

Each strategy is scored per symbol on the run's own window (the `score_window_days`
before the run's data end, 0: every stored candle before it, so a backfilled date is
scored on its own data) by walk-forward evaluation with the run's fold geometry
(`wf_train_days` of initial training, `wf_folds` test folds, rolling or `wf_anchored`),
the same for every item: parameters are chosen on each fold's training part and judged
only on the next, unseen part (see `backtest.walkforward`).

Deflated Sharpe ratio: the number of trials N is every (item, symbol) out-of-sample series
evaluated for a decision on earlier dates and on the day (`store.registry.trial_count`,
the `research_trials` table), so a lucky winner among many trials is not taken for
skill. The dispersion of trial Sharpe ratios is the sampling error of a Sharpe ratio
under no skill, 1/sqrt(T) per period, T being the out-of-sample bars
(`backtest.stats.no_skill_sharpe_std`).

The score is `research.stats.composite_score` of the out-of-sample metrics with that DSR.

A tuned version is never tested on the bars its parameters were fitted on: a fold whose
test part starts at or before its `fitted_until` chooses among its parent's candidates
(the parent's defaults and samples, the parent's seed), exactly as the parent is scored;
later folds use the tuned defaults (`fitted_candidates`, docs/protocol/tune.md).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import stats
from blofin_pipeline.backtest.walkforward import sample_candidates, walk_forward
from blofin_pipeline.config import RunContext

CURVE_POINTS = 400  # equity curve points kept per result, for the report's charts

#: One step up a tuned lineage: (fitted_until ISO timestamp, parent params, parent
#: param_space, parent ref), from the version itself upwards.
Fitted = tuple[str, Mapping[str, Any], Mapping[str, Any], str]


def _seed(ref: str) -> int:
    return int.from_bytes(hashlib.sha256(ref.encode()).digest()[:4], "little")


def candidate_seed(name: str, version: int) -> int:
    """The seed of a version's walk-forward parameter samples (the lookahead gate checks
    exactly those sets)."""
    return _seed(f"{name}@{version}")


def _curve(equity: pd.Series) -> list[list[Any]]:
    step = max(1, math.ceil(len(equity) / CURVE_POINTS))
    sampled = equity.iloc[::step]
    if sampled.index[-1] != equity.index[-1]:
        sampled = pd.concat([sampled, equity.iloc[-1:]])
    return [[ts.isoformat(), round(float(v), 6)] for ts, v in sampled.items()]


def score_one(ctx: RunContext, name: str, version: int, signal_fn: Any, symbol: str, candles: pd.DataFrame,
              n_total_trials: int, phase: str, window: tuple[pd.Timestamp, pd.Timestamp],
              fitted: Sequence[Fitted] = ()) -> dict[str, Any]:
    """Walk-forward score of one strategy version on one symbol, as a result row.

    `signal_fn(candles, params) -> positions` carries the strategy's default `params` and
    its `param_space`: `strategies.runner.signal_function`, which runs untrusted code in
    the sandbox for every parameter set. `fitted`: a tuned version's lineage
    (`fitted_candidates`); empty for every other version.
    """
    cfg = ctx.config
    wf = walk_forward(candles, signal_fn, dict(signal_fn.params), dict(signal_fn.param_space),
                      n_folds=cfg.wf_folds, train_bars=cfg.wf_train_bars, anchored=cfg.wf_anchored,
                      n_candidates=cfg.wf_candidates, seed=candidate_seed(name, version),
                      fee=cfg.fee, slippage=cfg.slippage, timeframe=cfg.timeframe,
                      earlier_candidates=fitted_candidates(fitted, cfg.wf_candidates, candles.index))
    metrics = with_deflated_sharpe(wf.metrics, wf.oos_returns.to_numpy(), n_total_trials)
    folds = [{"fold": f.fold, "test_start": f.test_start.isoformat(), "params": f.params} for f in wf.folds]
    span = (max(window[0], candles.index[0]), window[1])  # the whole history: from the symbol's first candle
    return result_row(ctx, (name, version, symbol, phase), span, metrics, folds, wf.oos_equity)


def fitted_candidates(fitted: Sequence[Fitted], n_candidates: int, index: pd.DatetimeIndex
                      ) -> list[tuple[pd.Timestamp, list[dict[str, Any]]]]:
    """`walk_forward`'s earlier_candidates for a tuned lineage (version first, then upwards).

    Up to its fitted_until a version is scored as its parent: the parent's candidate list
    (`sample_candidates` of its defaults and space, seeded by its ref, as its own score).
    The parent is in turn its own parent up to its fitted_until, so each step's bound is
    the smallest fitted_until met so far; returned with the bounds ascending.
    """
    out, bound = [], None
    for until_iso, params, space, ref in fitted:
        until = _on_index_tz(pd.Timestamp(until_iso), index)
        bound = until if bound is None else min(bound, until)
        out.append((bound, sample_candidates(params, space, n_candidates, _seed(ref))))
    return out[::-1]


def _on_index_tz(ts: pd.Timestamp, index: pd.DatetimeIndex) -> pd.Timestamp:
    """`ts` in the time zone of the candles' index (naive index: naive UTC)."""
    if index.tz is None:
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return ts.tz_localize("UTC").tz_convert(index.tz) if ts.tzinfo is None else ts.tz_convert(index.tz)


def with_deflated_sharpe(metrics: dict[str, Any], oos: np.ndarray, n_trials: int) -> dict[str, Any]:
    """The metrics plus the deflated Sharpe ratio at N = ``n_trials`` (`store.registry.trial_count`)
    with the trial Sharpe dispersion `stats.no_skill_sharpe_std` of the T out-of-sample bars:
    the same rule for strategies, models and ensembles."""
    out = dict(metrics)
    trial_std = stats.no_skill_sharpe_std(max(len(oos), 1))
    n_trials = max(int(n_trials), 1)
    out["dsr"] = stats.deflated_sharpe_ratio(oos, n_trials, trial_std)
    out["oos_bars"] = int(len(oos))
    out["dsr_n_trials"] = n_trials
    out["dsr_trial_sharpe_std"] = trial_std
    return out


def result_row(ctx: RunContext, item: tuple[str, int, str, str], window: tuple[pd.Timestamp, pd.Timestamp],
               metrics: dict[str, Any], params: Any, equity: pd.Series) -> dict[str, Any]:
    """One `strategy_backtest_results` row: (strategy, version, symbol, phase) scored on the window."""
    name, version, symbol, phase = item
    start, end = window
    return {
        "run_date": ctx.run_date, "strategy": name, "version": version, "symbol": symbol,
        "timeframe": ctx.config.timeframe, "phase": phase, "window_start": start.isoformat(),
        "window_end": end.isoformat(), "score": stats.composite_score(metrics), "sharpe": metrics["sharpe"],
        "deflated_sharpe": metrics["dsr"], "sortino": metrics["sortino"], "total_return": metrics["total_return"],
        "cagr": metrics["cagr"], "max_drawdown": metrics["max_drawdown"], "calmar": metrics["calmar"],
        "win_rate": metrics["win_rate"], "profit_factor": metrics["profit_factor"],
        "n_trades": int(metrics["n_trades"]), "exposure": metrics["exposure"], "turnover": metrics["turnover"],
        "params": params, "metrics": metrics, "equity_curve": _curve(equity),
    }
