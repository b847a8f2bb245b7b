"""Walk-forward, out-of-sample evaluation of a parametrised signal function.

The bars after an initial training span are cut into ``n_folds`` consecutive test windows.
For each fold, the defaults and ``n_candidates`` parameter sets sampled from the parameter
space are backtested on the fold's TRAIN window only (the bars just before the test window:
a rolling window of the initial training length, or everything before it when
``anchored=True``); the best by ``objective`` is then run on the unseen TEST window. Signals
for the test window are computed on the train window plus the test window, so indicators are
warmed up; a causal strategy (checked elsewhere for lookahead) uses no bar after the one it
decides on. Each fold's test backtest starts flat (the position held into the first test bar
was decided on a training bar and is not counted) and ends flat (the position is closed at
the last test bar, paying its exit cost), so the chained folds are a real sequence of trades.

The out-of-sample returns of all folds, chained, give the reported metrics. Parameters are
never judged on the data they were chosen on. The number of distinct parameter sets tried
and the dispersion of their (training) Sharpe ratios feed the deflated Sharpe ratio; the
``dsr`` in the metrics counts only this run's trials. To deflate by every strategy ever
tried (kept in the database), recompute it::

    stats.deflated_sharpe_ratio(result.oos_returns, n_trials_ever, result.trial_sharpe_std)
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.backtest import stats
from blofin_pipeline.backtest.engine import (
    DEFAULT_FEE,
    BacktestResult,
    infer_periods_per_year,
    run_backtest,
)
from blofin_pipeline.exceptions import BacktestError, PipelineError

log = logging.getLogger(__name__)

SignalFn = Callable[[pd.DataFrame, dict], pd.Series]
OBJECTIVES = ("sharpe", "sortino", "calmar", "total_return", "cagr")
MIN_WINDOW_BARS = 2


@dataclass(frozen=True)
class FoldResult:
    """One fold: where it trained and tested, what it chose, and how that did out of sample."""

    fold: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp      # last training bar (inclusive)
    test_start: pd.Timestamp
    test_end: pd.Timestamp       # last test bar (inclusive)
    params: dict[str, Any]
    train_objective: float
    test_metrics: dict[str, float]


@dataclass(frozen=True)
class WalkForwardResult:
    """Chained out-of-sample returns and metrics, with what was tried to get them."""

    oos_returns: pd.Series
    oos_equity: pd.Series
    metrics: dict[str, float]
    folds: list[FoldResult]
    n_trials: int
    trial_sharpes: np.ndarray          # (n_folds, n_trials) annualised training Sharpes, NaN if failed
    trial_sharpe_std: float            # std of per-period training Sharpes across trials
    candidates: list[dict[str, Any]] = field(default_factory=list)


def sample_candidates(
    defaults: Mapping[str, Any], param_space: Mapping[str, tuple], n_candidates: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Defaults first, then up to n_candidates distinct sets drawn uniformly from param_space.

    Integer bounds draw integers (both ends included), float bounds draw floats; parameters
    without a range keep their default.
    """
    if n_candidates < 0:
        raise ValueError(f"n_candidates must be >= 0, got {n_candidates!r}")
    for name, bounds in param_space.items():
        if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                and bounds[0] <= bounds[1]):
            raise ValueError(f"param_space[{name!r}] must be a (low, high) pair of numbers, got {bounds!r}")
    rng = np.random.default_rng(seed)
    base = dict(defaults)
    out = [base]
    seen = {_key(base)}
    # Small integer spaces may hold fewer distinct sets than asked for: bounded attempts.
    for _ in range(max(10 * n_candidates, 1) if n_candidates else 0):
        if len(out) > n_candidates:
            break
        cand = dict(base)
        for name, (low, high) in param_space.items():
            if isinstance(low, int) and isinstance(high, int):
                cand[name] = int(rng.integers(low, high + 1))
            else:
                cand[name] = float(rng.uniform(low, high))
        key = _key(cand)
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


def _key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def fold_bounds(n_bars: int, n_folds: int, train_len: int, anchored: bool) -> list[tuple[int, int, int, int]]:
    """(train_start, train_stop, test_start, test_stop) bar positions, stops exclusive: the
    first ``train_len`` bars train only, the rest is cut into ``n_folds`` equal test folds,
    each trained on the ``train_len`` bars before it (rolling) or on every bar before it
    (anchored)."""
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds!r}")
    if not 0 < train_len < n_bars:
        raise BacktestError(f"{n_bars} candles are too few for an initial training span of {train_len} bars "
                            "and test folds after it")
    edges = np.linspace(train_len, n_bars, n_folds + 1).round().astype(int)
    if train_len < MIN_WINDOW_BARS or np.diff(edges).min() < MIN_WINDOW_BARS:
        raise BacktestError(
            f"{n_bars} candles are too few for {n_folds} folds after {train_len} training bars"
        )
    bounds = []
    for k in range(n_folds):
        test_start, test_stop = int(edges[k]), int(edges[k + 1])
        train_start = 0 if anchored else test_start - train_len
        bounds.append((train_start, test_start, test_start, test_stop))
    return bounds


def _train_len(n_bars: int, train_bars: int | None, train_frac: float) -> int:
    """The initial training span in bars: ``train_bars``, or the ``train_frac`` share of the bars."""
    if train_bars is not None:
        return int(train_bars)
    if not 0 < train_frac < 1:
        raise ValueError(f"train_frac must be in (0, 1), got {train_frac!r}")
    return int(n_bars * train_frac)


def _objective_value(result: BacktestResult, objective: str) -> float:
    value = result.metrics.get(objective, math.nan)
    return float(value) if value is not None and math.isfinite(value) else math.nan


def _signals(signal_fn: SignalFn, candles: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
    signal = signal_fn(candles, dict(params))
    if not isinstance(signal, pd.Series):
        raise BacktestError(f"signal function returned {type(signal).__name__} for params {params!r}, "
                            "expected a pandas Series")
    return signal


def walk_forward(
    candles: pd.DataFrame,
    signal_fn: SignalFn,
    defaults: Mapping[str, Any],
    param_space: Mapping[str, tuple],
    *,
    n_folds: int = 4,
    train_frac: float = 0.5, train_bars: int | None = None, anchored: bool = False,
    n_candidates: int = 8,
    seed: int = 0,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    timeframe: str | None = None,
    objective: str = "sharpe",
) -> WalkForwardResult:
    """Choose parameters on each fold's training window, score them on the next unseen window.

    ``signal_fn(candles, params) -> Series`` of positions in [-1, 1] on the candles' index.
    Returns chained out-of-sample returns and metrics (``run_backtest``'s plus psr, dsr,
    n_trials, trial_sharpe_std, n_folds, oos_bars). Initial training: ``train_bars`` bars, else
    the ``train_frac`` share. A failing candidate is logged and skipped; failing defaults raise.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    costs = (fee, slippage, timeframe)
    candidates = sample_candidates(defaults, param_space, n_candidates, seed)
    bounds = fold_bounds(len(candles), n_folds, _train_len(len(candles), train_bars, train_frac), anchored)
    trial_sharpes = np.full((n_folds, len(candidates)), np.nan)
    folds: list[FoldResult] = []
    tests: list[tuple[BacktestResult, float]] = []  # each fold's test backtest, equity level before it
    equity_level = 1.0
    for k, (tr0, tr1, te0, te1) in enumerate(bounds):
        train = candles.iloc[tr0:tr1]
        scores = _train_scores(train, signal_fn, candidates, costs, objective, trial_sharpes[k], k)
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        chosen = candidates[best]
        test_res = _test_fold(candles, signal_fn, chosen, (tr0, te0, te1), costs)
        tests.append((test_res, equity_level))
        equity_level *= float(test_res.equity.iloc[-1])
        test = candles.iloc[te0:te1]
        folds.append(FoldResult(
            fold=k, train_start=train.index[0], train_end=train.index[-1],
            test_start=test.index[0], test_end=test.index[-1], params=dict(chosen),
            train_objective=float(scores[best]), test_metrics=dict(test_res.metrics),
        ))
        log.info("walk-forward fold %d: chose %r (train %s %.4g), test sharpe %.4g",
                 k, chosen, objective, scores[best], test_res.metrics["sharpe"])
    ppy = infer_periods_per_year(candles.index, timeframe)
    oos_returns, oos_equity, metrics = _chained_metrics(tests, ppy)
    trial_sharpe_std = _trial_sharpe_std(trial_sharpes, ppy)
    n_trials, r = len(candidates), oos_returns.to_numpy()
    metrics.update({"psr": stats.psr_from_returns(r), "dsr": stats.deflated_sharpe_ratio(r, n_trials, trial_sharpe_std),
                    "n_trials": n_trials, "trial_sharpe_std": trial_sharpe_std, "n_folds": n_folds,
                    "oos_bars": int(r.size)})
    return WalkForwardResult(
        oos_returns=oos_returns, oos_equity=oos_equity, metrics=metrics, folds=folds,
        n_trials=n_trials, trial_sharpes=trial_sharpes, trial_sharpe_std=trial_sharpe_std,
        candidates=candidates,
    )


def _trial_sharpe_std(trial_sharpes: np.ndarray, ppy: float) -> float:
    """Per-period Sharpe dispersion across a fold's trials, averaged over folds."""
    per_period = trial_sharpes / math.sqrt(ppy)
    fold_vars = [np.nanvar(row, ddof=1) for row in per_period if np.isfinite(row).sum() >= 2]
    return float(math.sqrt(np.mean(fold_vars))) if fold_vars else 0.0


def _train_scores(train: pd.DataFrame, signal_fn: SignalFn, candidates: list[dict[str, Any]],
                  costs: tuple[float, float, str | None], objective: str, sharpes_out: np.ndarray,
                  fold: int) -> np.ndarray:
    """Objective of every candidate on a fold's training window (NaN when it failed)."""
    fee, slippage, timeframe = costs
    scores = np.full(len(candidates), np.nan)
    for i, params in enumerate(candidates):
        try:
            res = run_backtest(train, _signals(signal_fn, train, params), fee, slippage, timeframe=timeframe)
        except (PipelineError, ValueError) as err:
            if i == 0:
                raise BacktestError(f"default parameters {params!r} failed on fold {fold}: {err}") from err
            log.warning("walk-forward fold %d: candidate %r skipped: %s", fold, params, err)
            continue
        scores[i] = _objective_value(res, objective)
        sharpes_out[i] = res.metrics["sharpe"]
    return scores


def _test_fold(candles: pd.DataFrame, signal_fn: SignalFn, chosen: dict[str, Any], span: tuple[int, int, int],
               costs: tuple[float, float, str | None]) -> BacktestResult:
    """Backtest the chosen parameters on the unseen test window, the train window as warm-up."""
    tr0, te0, te1 = span
    fee, slippage, timeframe = costs
    history = candles.iloc[tr0:te1]
    full_signal = _signals(signal_fn, history, chosen)
    if len(full_signal) != len(history) or not full_signal.index.equals(history.index):
        raise BacktestError(f"signal for params {chosen!r} is not on the candles' index")
    test_signal = full_signal.iloc[te0 - tr0:].copy()
    test_signal.iloc[-1] = 0.0  # close at the window's end: each fold pays its own exit
    return run_backtest(candles.iloc[te0:te1], test_signal, fee, slippage, timeframe=timeframe)


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

