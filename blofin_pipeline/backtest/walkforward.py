"""Walk-forward, out-of-sample evaluation of a parametrised signal function.

The bars after an initial training span are cut into ``n_folds`` consecutive test windows.
For each fold, the defaults and ``n_candidates`` parameter sets sampled from the parameter
space are backtested on the fold's TRAIN window only (the bars just before the test window:
a rolling window of the initial training length, or everything before it when
``anchored=True``); the best by ``objective`` is then run on the unseen TEST window. Each
fold's test backtest starts flat (the position held into the first test bar was decided on
a training bar and is not counted) and ends flat (the position is closed at the last test
bar, paying its exit cost), so the chained folds are a real sequence of trades.

Signals are computed ONCE per parameter set over the whole window and sliced for every
fold's training and test backtests (the training backtests of a fold run together on the
engine's grid path). A causal strategy's signal at bar t is the same whether the series
ends at t or later (the lookahead check gates every strategy on exactly that), so the
slices are what the strategy would have said at each bar, with indicators warmed on every
bar before the window's start rather than from each fold's own first bar. Choosing on the
training window never uses a test bar's return.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.backtest import stats
from blofin_pipeline.backtest.engine import (
    DEFAULT_FEE,
    cost_rates,
    infer_periods_per_year,
    positions_array,
    run_backtest_grid,
    simulate_one,
)
from blofin_pipeline.backtest.simulate import validate_close
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


def _objective_value(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.nan


def candidate_signals(candles: pd.DataFrame, signal_fn: SignalFn, candidates: list[dict[str, Any]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's positions over the whole window, computed once: (signals, ok).

    ``signals`` is (n_candidates x n_bars) float64, validated as `run_backtest` validates
    positions; ``ok[i]`` is False where candidate i failed (logged, its row NaN). The
    defaults (candidate 0) failing is an error.
    """
    signals = np.full((len(candidates), len(candles)), np.nan)
    ok = np.zeros(len(candidates), dtype=bool)
    for i, params in enumerate(candidates):
        try:
            signals[i] = _signal_row(candles, signal_fn, params)
        except (PipelineError, ValueError) as err:
            if i == 0:
                raise BacktestError(f"default parameters {params!r} failed: {err}") from err
            log.warning("walk-forward: candidate %r skipped: %s", params, err)
            continue
        ok[i] = True
    return signals, ok


def _signal_row(candles: pd.DataFrame, signal_fn: SignalFn, params: dict[str, Any]) -> np.ndarray:
    signal = signal_fn(candles, dict(params))
    if not isinstance(signal, pd.Series):
        raise BacktestError(f"signal function returned {type(signal).__name__} for params {params!r}, "
                            "expected a pandas Series")
    if len(signal) != len(candles) or not signal.index.equals(candles.index):
        raise BacktestError(f"signal for params {params!r} is not on the candles' index")
    return positions_array(candles, signal)


def walk_forward(
    candles: pd.DataFrame,
    signal_fn: SignalFn,
    defaults: Mapping[str, Any],
    param_space: Mapping[str, tuple],
    *,
    n_folds: int = 4,
    train_frac: float = 0.5, train_bars: int | None = None, anchored: bool = False,
    n_candidates: int = 8, seed: int = 0,
    fee: float = DEFAULT_FEE, slippage: float = 0.0, timeframe: str | None = None,
    objective: str = "sharpe", earlier_candidates: Sequence[tuple[pd.Timestamp, list[dict[str, Any]]]] = (),
) -> WalkForwardResult:
    """Choose parameters on each fold's training window, score them on the next unseen window.

    ``signal_fn(candles, params) -> Series`` of positions in [-1, 1] on the candles' index,
    called once per parameter set over the whole window. Returns chained out-of-sample
    returns and metrics (``run_backtest``'s plus psr, dsr, n_trials, trial_sharpe_std,
    n_folds, oos_bars). Initial training: ``train_bars`` bars, else the ``train_frac`` share.
    A failing candidate is logged and skipped; failing defaults raise. ``earlier_candidates``
    ((until, candidates), until ascending): a fold whose test starts at or before an until
    chooses among the first such pair's candidates, not its own (a tuned version scored as
    its parent up to its fit).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    costs = (fee, slippage, timeframe)
    candidates = sample_candidates(defaults, param_space, n_candidates, seed)
    bounds = fold_bounds(len(candles), n_folds, _train_len(len(candles), train_bars, train_frac), anchored)
    groups = [candidates] + [list(c) for _, c in earlier_candidates]
    offsets = np.cumsum([0] + [len(g) for g in groups])
    signals, ok = candidate_signals(candles, signal_fn, [p for g in groups for p in g])
    trial_sharpes = np.full((n_folds, max(len(g) for g in groups)), np.nan)
    folds: list[FoldResult] = []
    tests: list[tuple[_TestRun, float]] = []  # each fold's test backtest, equity level before it
    equity_level = 1.0
    for k, span in enumerate(bounds):
        # The group a fold chooses from: its own candidates, or a parent's up to a fit.
        g = next((i + 1 for i, (until, _) in enumerate(earlier_candidates) if candles.index[span[2]] <= until), 0)
        first = int(offsets[g])
        rows = first + np.flatnonzero(ok[first:offsets[g + 1]])
        best, train_objective = _choose(candles, signals, rows, span, costs, objective, trial_sharpes[k], first)
        chosen = groups[g][best - first]
        test_res = _test_fold(candles, signals[best], span, costs)
        tests.append((test_res, equity_level))
        equity_level *= test_res.final_equity
        folds.append(_fold_result(k, candles.index, span, chosen, train_objective, test_res))
        log.info("walk-forward fold %d: chose %r (train %s %.4g), test sharpe %.4g",
                 k, chosen, objective, train_objective, test_res.metrics["sharpe"])
    ppy = infer_periods_per_year(candles.index, timeframe)
    oos_index = candles.index[bounds[0][2]:bounds[-1][3]]
    oos_returns, oos_equity, metrics = _chained_metrics(tests, oos_index, ppy)
    trial_sharpe_std = _trial_sharpe_std(trial_sharpes, ppy)
    n_trials, r = len(candidates), oos_returns.to_numpy()
    metrics.update({"psr": stats.psr_from_returns(r), "dsr": stats.deflated_sharpe_ratio(r, n_trials, trial_sharpe_std),
                    "n_trials": n_trials, "trial_sharpe_std": trial_sharpe_std, "n_folds": n_folds,
                    "oos_bars": int(r.size)})
    return WalkForwardResult(oos_returns, oos_equity, metrics, folds, n_trials, trial_sharpes, trial_sharpe_std,
                             candidates)


def _fold_result(k: int, index: pd.DatetimeIndex, span: tuple[int, int, int, int], params: dict[str, Any],
                 train_objective: float, test_res: _TestRun) -> FoldResult:
    tr0, tr1, te0, te1 = span
    return FoldResult(
        fold=k, train_start=index[tr0], train_end=index[tr1 - 1], test_start=index[te0],
        test_end=index[te1 - 1], params=dict(params), train_objective=train_objective,
        test_metrics=dict(test_res.metrics),
    )


def _trial_sharpe_std(trial_sharpes: np.ndarray, ppy: float) -> float:
    """Per-period Sharpe dispersion across a fold's trials, averaged over folds."""
    per_period = trial_sharpes / math.sqrt(ppy)
    fold_vars = [np.nanvar(row, ddof=1) for row in per_period if np.isfinite(row).sum() >= 2]
    return float(math.sqrt(np.mean(fold_vars))) if fold_vars else 0.0


def _choose(candles: pd.DataFrame, signals: np.ndarray, rows: np.ndarray, span: tuple[int, int, int, int],
            costs: tuple[float, float, str | None], objective: str, sharpes_out: np.ndarray,
            first: int = 0) -> tuple[int, float]:
    """The candidate row with the best objective on the fold's training window, and that value.

    Every row is backtested at once on the training bars (the engine's grid path); row
    ``first + j``'s Sharpe goes into ``sharpes_out[j]``. No finite objective: the group's
    defaults (row ``first``).
    """
    tr0, tr1, _, _ = span
    fee, slippage, timeframe = costs
    train = candles.iloc[tr0:tr1]
    ppy = infer_periods_per_year(train.index, timeframe)
    grid = run_backtest_grid(train["close"].to_numpy(dtype=np.float64), signals[rows, tr0:tr1].T, fee, slippage,
                             periods_per_year=ppy)
    scores = np.full(len(sharpes_out), np.nan)
    for j, row in enumerate(rows):
        scores[row - first] = _objective_value(grid[objective][j])
        sharpes_out[row - first] = grid["sharpe"][j]
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    return first + best, float(scores[best])


@dataclass(frozen=True)
class _TestRun:
    """What the chained out-of-sample figures need of one fold's test backtest."""

    returns: np.ndarray
    positions: np.ndarray
    trade_returns: np.ndarray
    trade_pnl: np.ndarray        # per unit of the equity at the fold's start
    final_equity: float
    metrics: dict[str, float]


def _test_fold(candles: pd.DataFrame, signal: np.ndarray, span: tuple[int, int, int, int],
               costs: tuple[float, float, str | None]) -> _TestRun:
    """Backtest the chosen row on the unseen test window (its signal warmed on every bar
    before): `run_backtest` of the test bars, without building its pandas objects."""
    _, _, te0, te1 = span
    fee, slippage, timeframe = costs
    test_signal = signal[te0:te1].copy()
    test_signal[-1] = 0.0  # close at the window's end: each fold pays its own exit
    close = candles["close"].to_numpy(dtype=np.float64)[te0:te1]
    validate_close(close, "candles close")
    ppy = infer_periods_per_year(candles.index[te0:te1], timeframe)
    core, metrics = simulate_one(close, test_signal, *cost_rates(fee, slippage), ppy)
    return _TestRun(returns=core.returns[0], positions=test_signal, trade_returns=core.trade_return,
                    trade_pnl=core.trade_end_equity - core.trade_start_equity,
                    final_equity=float(core.equity[0, -1]), metrics=metrics)


def _chained_metrics(tests: list[tuple[_TestRun, float]], index: pd.DatetimeIndex, ppy: float
                     ) -> tuple[pd.Series, pd.Series, dict[str, float]]:
    """Chain the folds' test results (on their consecutive bars ``index``): out-of-sample
    returns, equity and their metrics."""
    r = np.concatenate([t.returns for t, _ in tests])
    oos_returns = pd.Series(r, index=index, name="oos_returns")
    oos_equity = pd.Series(np.cumprod(1.0 + r), index=index, name="oos_equity")
    positions = np.concatenate([t.positions for t, _ in tests])
    trade_returns = np.concatenate([t.trade_returns for t, _ in tests])
    trade_pnl = np.concatenate([t.trade_pnl * level for t, level in tests])
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


def chain_test_positions(candles: pd.DataFrame, fold_positions: list[pd.Series], *, fee: float = DEFAULT_FEE,
                         slippage: float = 0.0, timeframe: str | None = None
                         ) -> tuple[pd.Series, pd.Series, dict[str, float]]:
    """Chained out-of-sample returns, equity and metrics of positions decided elsewhere (ML).

    ``fold_positions`` holds one Series per test fold, on that fold's test bars of
    ``candles``. Each fold is backtested like a walk-forward test window: it starts flat
    and ends flat (the last position is closed, paying its exit), so a model's figures come
    from the same code and fold conventions as every strategy's.
    """
    if not fold_positions:
        raise BacktestError("no test folds to chain")
    tests: list[tuple[_TestRun, float]] = []
    level = 1.0
    for positions in fold_positions:
        te0 = int(candles.index.get_indexer([positions.index[0]])[0])
        te1 = te0 + len(positions)
        if te0 < 0 or not candles.index[te0:te1].equals(positions.index):
            raise BacktestError(f"fold positions from {positions.index[0]} are not on the candles' bars")
        signal = np.zeros(len(candles))
        signal[te0:te1] = positions_array(candles.iloc[te0:te1], positions.astype(np.float64))
        res = _test_fold(candles, signal, (te0, te0, te0, te1), (fee, slippage, timeframe))
        tests.append((res, level))
        level *= res.final_equity
    ppy = infer_periods_per_year(candles.index, timeframe)
    index = fold_positions[0].index.append([p.index for p in fold_positions[1:]])
    oos_returns, oos_equity, metrics = _chained_metrics(tests, index, ppy)
    r = oos_returns.to_numpy()
    metrics.update({"psr": stats.psr_from_returns(r), "n_folds": len(fold_positions), "oos_bars": int(r.size)})
    return oos_returns, oos_equity, metrics
