"""The tuner: pick the underperformers, diagnose why they fail, propose better versions.

Honest evaluation. Each symbol's candles are split in time: the first part
(``1 - holdout``) is the *tuning* part, the last part the *held-out* part. The offline
tuner searches parameters with Optuna (TPE, seeded) on the walk-forward objective of the
tuning part only; the default and the tuned parameters are then both judged on the
held-out part, which the search never saw (signals are computed on the full history so
indicators are warm, but only held-out bars are backtested). `before_metrics` and
`after_metrics` are those held-out metrics, averaged over symbols, with the per-symbol
figures kept. The diagnosis is made on the tuning part too.

Online, the tune step's model gets the diagnosis, the metrics, the parameters with their
`param_space` and the code (`llm.prompts.build_tune_prompt`) and answers a `TuneReply`;
each proposal becomes a candidate with a parent link. Parameter-only proposals are judged
on the held-out part like offline ones (the registered code is trusted); proposals that
change code are not run here: `backtest_candidates` checks and scores them.

A tuned candidate keeps the parent's file, with the new defaults written into `params`
and a new name ``f"{base}_t{hash6}"``; its `parent` is ``"name@version"``.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from blofin_pipeline.costs import DEFAULT_FEE
from blofin_pipeline.exceptions import BacktestError, ConfigError, StrategyError
from blofin_pipeline.research.blocks import (
    merge_params,
    rewrite_class_attrs,
    short_hash,
)
from blofin_pipeline.research.designer import Candidate, rng_for
from blofin_pipeline.research.regime import label_regimes

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMCaller

logger = logging.getLogger(__name__)

HOLDOUT = 0.3               # share of each symbol's bars held out from tuning
N_FOLDS = 3                 # walk-forward folds inside the tuning part
WF_WARMUP = 0.2             # share of the tuning part that only warms indicators up
MIN_BARS_PER_PART = 200     # both parts need at least this many bars per symbol

# Diagnosis thresholds (each finding states its numbers).
DEEP_DRAWDOWN = -0.15       # max drawdown at or below this is worth a word
LONG_UNDERWATER = 0.25      # worst drawdown episode longer than this share of the bars
FEE_DRAG = 0.5              # fees above this share of the gross profit
TRADES_PER_100_BARS = 5.0   # more round trips than this per 100 bars is overtrading
LOW_WIN_RATE = 0.35
REGIME_MIN_BARS = 50        # a regime needs this many bars to be judged
REGIME_T_STAT = 2.0         # a regime's mean return below -this t-statistic is a clear loss

NAME_LIMIT = 64
_TUNED_SUFFIX = re.compile(r"(_t[0-9a-f]{6})+$")

#: Metrics averaged over symbols in before/after summaries.
SUMMARY_METRICS = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar",
                   "win_rate", "profit_factor", "exposure", "turnover", "fees_paid")


@dataclass(frozen=True)
class TuneResult:
    """One tuned strategy: the candidate, its parameters and honest before/after metrics.

    `candidate` is None when the search kept the parent's parameters (nothing new to
    register). `improved` compares the held-out objective after vs before.
    """

    strategy: str
    candidate: Candidate | None
    params: dict[str, Any]
    before_metrics: dict[str, Any]
    after_metrics: dict[str, Any]
    diagnosis: list[str]
    objective: str = "sharpe"
    improved: bool | None = None
    tuning: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["candidate"] = self.candidate.to_dict() if self.candidate else None
        return out


# --- picking and diagnosing -------------------------------------------------------

def pick_underperformers(score_rows: Sequence[Mapping[str, Any]], k: int, *,
                         score_key: str = "score") -> list[dict[str, Any]]:
    """The `k` strategies with the lowest mean score over their rows (one row per symbol).

    Rows need "name" and `score_key`; rows with a missing or non-finite score count as
    the worst (a strategy that cannot be scored needs attention first). Ties break on name.
    Returns [{"name", "score", "n_rows"}], worst first.
    """
    if k < 0:
        raise ConfigError(f"pick_underperformers: k must be >= 0, got {k}")
    by_name: dict[str, list[float]] = {}
    for row in score_rows:
        name = row.get("name")
        if not name:
            raise ConfigError(f"pick_underperformers: score row {dict(row)!r} has no name")
        value = row.get(score_key)
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = float("nan")
        by_name.setdefault(str(name), []).append(value if math.isfinite(value) else -math.inf)
    ranked = sorted(((float(np.mean(v)), n, len(v)) for n, v in by_name.items()), key=lambda t: (t[0], t[1]))
    return [{"name": n, "score": s, "n_rows": c} for s, n, c in ranked[:k]]


def _drawdown_episodes(equity: np.ndarray) -> list[tuple[int, int, float]]:
    """(start, end, depth) of every underwater episode of an equity curve."""
    peak = np.maximum.accumulate(equity)
    under = equity < peak
    episodes = []
    i, n = 0, len(equity)
    while i < n:
        if under[i]:
            j = i
            while j < n and under[j]:
                j += 1
            depth = float(np.min(equity[i:j] / peak[i:j]) - 1.0)
            episodes.append((i - 1 if i else 0, j - 1, depth))
            i = j
        else:
            i += 1
    return episodes


def diagnose(
    result: Any = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    trades: pd.DataFrame | None = None,
    returns: pd.Series | None = None,
    candles: pd.DataFrame | None = None,
    label: str = "",
) -> list[str]:
    """Failure patterns of a backtest, each with its numbers.

    Give a `run_backtest` result (its metrics, trades and returns are used) or the
    pieces. With `candles` (the backtest's), returns are split by the regime of each bar
    to find a regime mismatch. Patterns: drawdown clusters, overtrading and fee drag,
    regime mismatch, low win rate. An empty list means nothing alarming.
    """
    if result is not None:
        metrics = metrics if metrics is not None else getattr(result, "metrics", None)
        trades = trades if trades is not None else getattr(result, "trades", None)
        returns = returns if returns is not None else getattr(result, "returns", None)
    metrics = dict(metrics or {})
    prefix = f"{label}: " if label else ""
    found: list[str] = []

    def num(key: str) -> float | None:
        value = metrics.get(key)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    n_bars = len(returns) if returns is not None else None
    # Drawdown clusters: how deep, how long, and how many separate deep episodes.
    max_dd = num("max_drawdown")
    if returns is not None and len(returns) > 1:
        equity = np.cumprod(1.0 + returns.fillna(0.0).to_numpy())
        episodes = _drawdown_episodes(equity)
        deep = [e for e in episodes if e[2] <= DEEP_DRAWDOWN / 2]
        worst = min(episodes, key=lambda e: e[2]) if episodes else None
        if worst is not None and (worst[2] <= DEEP_DRAWDOWN or (worst[1] - worst[0]) / len(equity) > LONG_UNDERWATER):
            found.append(
                f"{prefix}drawdown cluster: worst drawdown {worst[2]:.1%} lasting {worst[1] - worst[0]} bars "
                f"({(worst[1] - worst[0]) / len(equity):.0%} of the sample), "
                f"{len(deep)} episodes deeper than {DEEP_DRAWDOWN / 2:.1%}"
            )
    elif max_dd is not None and max_dd <= DEEP_DRAWDOWN:
        found.append(f"{prefix}drawdown cluster: max drawdown {max_dd:.1%}")

    # Overtrading and fee drag.
    n_trades = num("n_trades")
    fees = num("fees_paid")
    total = num("total_return")
    if n_trades is not None and n_bars:
        per_100 = 100.0 * n_trades / n_bars
        gross = (total or 0.0) + (fees or 0.0)
        # Fee drag: the costs ate more than FEE_DRAG of a gross profit (with a gross loss the
        # fees are not the cause, the rule is).
        drag = fees is not None and gross > 0 and fees > FEE_DRAG * gross
        if per_100 > TRADES_PER_100_BARS or drag:
            found.append(
                f"{prefix}overtrading and fee drag: {int(n_trades)} trades in {n_bars} bars "
                f"({per_100:.1f} per 100 bars), fees {fees or 0.0:.1%} of equity against a gross "
                f"return of {gross:+.1%} (net {total or 0.0:+.1%})"
            )

    # Regime mismatch: returns split by the trend state of the bar that held the position.
    if returns is not None and candles is not None and len(candles) == len(returns) and len(candles) > 64:
        regimes = label_regimes(candles)["trend"].shift(1).reindex(returns.index)
        rets = returns.fillna(0.0)
        stats = {}
        for state in ("up", "down", "range"):
            part = rets[regimes == state]
            if len(part) >= REGIME_MIN_BARS and part.std() > 0:
                stats[state] = (float(part.mean() / part.std() * math.sqrt(len(part))), len(part))
        losers = {s: v for s, v in stats.items() if v[0] < -REGIME_T_STAT}
        winners = {s: v for s, v in stats.items() if v[0] > 0.0}
        if losers and winners:
            loss_text = ", ".join(f"{s} (t-stat {v[0]:.1f} over {v[1]} bars)" for s, v in sorted(losers.items()))
            win_text = ", ".join(f"{s} (t-stat {v[0]:.1f})" for s, v in sorted(winners.items()))
            found.append(f"{prefix}regime mismatch: loses in {loss_text}; earns in {win_text}")

    # Low win rate (with the payoff that would have to compensate).
    win_rate = num("win_rate")
    profit_factor = num("profit_factor")
    if win_rate is not None and win_rate < LOW_WIN_RATE and (n_trades or 0) >= 5:
        pf = f", profit factor {profit_factor:.2f}" if profit_factor is not None else ""
        avg = ""
        if trades is not None and len(trades) and "return" in trades.columns:
            wins = trades.loc[trades["return"] > 0, "return"]
            losses = trades.loc[trades["return"] <= 0, "return"]
            if len(wins) and len(losses):
                avg = f", average win {wins.mean():+.2%} vs average loss {losses.mean():+.2%}"
        found.append(f"{prefix}low win rate: {win_rate:.0%} of {int(n_trades or 0)} trades win{pf}{avg}")
    return found


# --- evaluation -------------------------------------------------------------------

SignalFn = Callable[[pd.DataFrame, Mapping[str, Any]], pd.Series]


def split_candles(candles: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tuning part, held-out part) of one symbol's candles, split in time."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"tuner: holdout must be in (0, 1), got {holdout!r}")
    cut = int(round(len(candles) * (1.0 - holdout)))
    return candles.iloc[:cut], candles.iloc[cut:]


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
    holdout: float, fee: float, slippage: float, timeframe: str | None, objective: str,
) -> dict[str, Any]:
    """Metrics of `params` on each symbol's held-out part, signals warmed on the full history."""
    from blofin_pipeline.backtest import run_backtest

    per_symbol = {}
    for symbol, candles in candles_by_symbol.items():
        _, held = split_candles(candles, holdout)
        positions = fn(candles, dict(params)).reindex(held.index)
        result = run_backtest(held, positions, fee=fee, slippage=slippage, timeframe=timeframe)
        per_symbol[symbol] = dict(result.metrics)
    return _summary(per_symbol, objective)


def walk_forward_objective(
    fn: SignalFn, params: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame], *,
    n_folds: int, fee: float, slippage: float, timeframe: str | None, objective: str,
) -> float:
    """Mean over symbols of the chained walk-forward test-window objective of fixed `params`.

    The parameters are fixed (empty search space), so each fold's training window serves
    only to warm the indicators; the first WF_WARMUP share of the data is that warm-up.
    """
    from blofin_pipeline.backtest.walkforward import walk_forward

    values = []
    for candles in candles_by_symbol.values():
        result = walk_forward(candles, fn, dict(params), {}, n_folds=n_folds, train_frac=WF_WARMUP,
                              n_candidates=0, fee=fee, slippage=slippage, timeframe=timeframe,
                              objective=objective)
        value = result.metrics.get(objective)
        values.append(float(value) if value is not None else float("nan"))
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


# --- naming ---------------------------------------------------------------------

def tuned_name(parent_name: str, params: Mapping[str, Any], code_change: str = "") -> str:
    """``f"{base}_t{hash6}"`` where base drops earlier _t suffixes; at most 64 chars."""
    base = _TUNED_SUFFIX.sub("", parent_name)
    digest = short_hash(repr(sorted((k, repr(v)) for k, v in params.items())) + code_change)
    base = base[: NAME_LIMIT - 8].rstrip("_")
    return f"{base}_t{digest}"


def _parent_ref(name: str, version: Any) -> str:
    return f"{name}@{version}" if version is not None else name


# --- offline tuning -------------------------------------------------------------

def _suggest(trial: Any, space: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    params = {}
    for key in sorted(space):
        low, high = space[key]
        if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
            params[key] = trial.suggest_int(key, low, high)
        else:
            params[key] = trial.suggest_float(key, float(low), float(high))
    return params


def tune_strategy(
    strategy_cls: type,
    code: str,
    candles_by_symbol: Mapping[str, pd.DataFrame],
    *,
    n_trials: int = 20,
    seed: int = 0,
    timeframe: str | None = None,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    holdout: float = HOLDOUT,
    n_folds: int = N_FOLDS,
    objective: str = "sharpe",
    version: Any = None,
    tried_names: Collection[str] = frozenset(),
) -> TuneResult:
    """Optuna search on the tuning part, before/after judged on the held-out part.

    The best trial whose tuned name (a hash of its parameters) is not in `tried_names`
    wins, so a version registered on an earlier day is not proposed again.
    """
    import optuna

    from blofin_pipeline.strategies.base import signal_fn

    name = strategy_cls.name
    space = dict(strategy_cls.param_space)
    if not space:
        raise StrategyError(f"strategy {name!r} has an empty param_space: nothing to tune")
    if n_trials < 1:
        raise ConfigError(f"tuner: n_trials must be >= 1, got {n_trials}")
    if not candles_by_symbol:
        raise ConfigError(f"tuner: no candles to tune strategy {name!r} on")
    fn = signal_fn(strategy_cls)
    tuning_part = {}
    for symbol, candles in candles_by_symbol.items():
        early, late = split_candles(candles, holdout)
        if len(early) < MIN_BARS_PER_PART or len(late) < MIN_BARS_PER_PART // 2:
            raise ConfigError(f"tuner: {symbol} has {len(candles)} bars, too few to tune {name!r} "
                              f"with a {holdout:.0%} hold-out")
        tuning_part[symbol] = early
    defaults = dict(strategy_cls.params)
    common = {"fee": fee, "slippage": slippage, "timeframe": timeframe, "objective": objective}

    # Diagnosis of the defaults, on the tuning part only.
    from blofin_pipeline.backtest import run_backtest

    diagnosis: list[str] = []
    for symbol, early in tuning_part.items():
        result = run_backtest(early, fn(early, defaults), fee=fee, slippage=slippage, timeframe=timeframe)
        diagnosis += diagnose(result, candles=early, label=symbol)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({k: v for k, v in defaults.items() if k in space})

    def objective_fn(trial: Any) -> float:
        params = merge_params(defaults, _suggest(trial, space), space)
        try:
            value = walk_forward_objective(fn, params, tuning_part, n_folds=n_folds, **common)
        except (StrategyError, BacktestError) as err:
            # A parameter corner where the strategy breaks is a bad trial, not a crash.
            logger.info("tuner: %s trial %d failed: %s", name, trial.number, err)
            return -1e9
        return value if math.isfinite(value) else -1e9

    study.optimize(objective_fn, n_trials=n_trials)
    default_value = study.trials[0].value
    best, skipped = _best_untried(study, defaults, space, name, tried_names)
    before = heldout_metrics(fn, defaults, candles_by_symbol, holdout=holdout, **common)
    after = heldout_metrics(fn, best, candles_by_symbol, holdout=holdout, **common) if best != defaults else before
    improved = bool(after["objective"] > before["objective"]) if best != defaults else False
    _, first_held = split_candles(next(iter(candles_by_symbol.values())), holdout)
    tuning = {
        "method": "optuna-tpe", "n_trials": n_trials, "seed": seed, "n_folds": n_folds,
        "holdout": holdout, "objective": objective,
        "tuning_objective_default": default_value, "tuning_objective_best": study.best_value,
        "held_out_from": str(first_held.index[0]),
        "skipped_tried": skipped,
    }
    candidate = None
    if best != defaults:
        new_name = tuned_name(name, best)
        new_code = rewrite_class_attrs(code, {"name": new_name, "params": best}, owner=name)
        rationale = (
            f"Optuna ({n_trials} trials, seed {seed}) on the walk-forward {objective} of the first "
            f"{1 - holdout:.0%} of the data moved {_changes(defaults, best)}. Held-out {objective}: "
            f"{before['objective']:.3f} -> {after['objective']:.3f}."
            + (f" Diagnosis: {'; '.join(diagnosis[:3])}." if diagnosis else "")
        )
        candidate = Candidate(name=new_name, category=strategy_cls.category, code=new_code,
                              rationale=rationale, origin="tuner", parent=_parent_ref(name, version),
                              params=best, meta={"mode": "offline", "improved": improved})
    logger.info("tuner: %s held-out %s %.3f -> %.3f (%s)", name, objective, before["objective"],
                after["objective"], "improved" if improved else "not improved")
    return TuneResult(strategy=name, candidate=candidate, params=best, before_metrics=before,
                      after_metrics=after, diagnosis=diagnosis, objective=objective,
                      improved=improved, tuning=tuning)


def _best_untried(study: Any, defaults: Mapping[str, Any], space: Mapping[str, Sequence[Any]], name: str,
                  tried_names: Collection[str]) -> tuple[dict[str, Any], int]:
    """(params of the best finished trial not tried before, number of better ones skipped).

    Returns the defaults when no trial beats them with new parameters.
    """
    default_value = study.trials[0].value
    finished = [t for t in study.trials if t.value is not None and math.isfinite(t.value) and t.value > -1e9]
    finished.sort(key=lambda t: (-t.value, t.number))
    skipped = 0
    for trial in finished:
        if trial.value <= default_value:
            break
        params = merge_params(defaults, trial.params, space)
        if params == dict(defaults):
            continue
        if tuned_name(name, params) in tried_names:
            skipped += 1
            continue
        return params, skipped
    return dict(defaults), skipped


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    moved = [f"{k} {old.get(k)!r}->{new[k]!r}" for k in sorted(new) if old.get(k) != new[k]]
    return ", ".join(moved) or "nothing"


# --- online tuning --------------------------------------------------------------

def tune_prompt_context(targets: Sequence[Mapping[str, Any]], extra: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
    """Context for `llm.prompts.build_tune_prompt`: one entry per strategy to tune."""
    candidates = []
    for t in targets:
        candidates.append({k: t.get(k) for k in ("name", "category", "params", "param_space", "metrics",
                                                  "diagnosis", "code")})
    context = dict(extra or {})
    context["candidates"] = candidates
    return context


def tune_online(
    targets: Sequence[Mapping[str, Any]],
    llm: LLMCaller,
    candles_by_symbol: Mapping[str, pd.DataFrame] | None = None,
    *,
    prompt_extra: Mapping[str, Any] | None = None,
    timeframe: str | None = None,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    holdout: float = HOLDOUT,
    objective: str = "sharpe",
    tried_names: Collection[str] = frozenset(),
) -> list[TuneResult]:
    """Ask the LLM for parameter (and maybe code) changes; map each proposal to a candidate.

    targets: dicts with name, category, code, params, param_space, metrics, diagnosis,
    version. A proposal for an unknown strategy or with parameters outside param_space is
    dropped with a warning (the caller already retried the model once on such replies).
    """
    from blofin_pipeline.llm.prompts import build_tune_prompt
    from blofin_pipeline.llm.schemas import TuneReply, check_params_in_bounds

    by_name = {str(t["name"]): t for t in targets}
    prompt = build_tune_prompt(tune_prompt_context(targets, prompt_extra))
    bounds = {n: dict(t.get("param_space") or {}) for n, t in by_name.items()}
    reply = llm("tune", prompt, TuneReply, param_bounds=bounds)
    out: list[TuneResult] = []
    for proposal in reply.proposals:
        target = by_name.get(proposal.strategy)
        if target is None:
            logger.warning("tuner (llm): proposal for unknown strategy %r dropped", proposal.strategy)
            continue
        space = dict(target.get("param_space") or {})
        try:
            check_params_in_bounds(proposal.strategy, proposal.params, space)
        except ValueError as err:
            logger.warning("tuner (llm): %s", err)
            continue
        defaults = dict(target.get("params") or {})
        params = merge_params(defaults, proposal.params, space)
        base_code = proposal.code or str(target["code"])
        code_change = short_hash(proposal.code) if proposal.code else ""
        new_name = tuned_name(proposal.strategy, params, code_change)
        try:
            new_code = rewrite_class_attrs(base_code, {"name": new_name, "params": params}, owner=proposal.strategy)
        except StrategyError as err:
            logger.warning("tuner (llm): proposal for %r dropped: %s", proposal.strategy, err)
            continue
        if params == defaults and not proposal.code:
            logger.info("tuner (llm): proposal for %r changes nothing", proposal.strategy)
            continue
        if new_name in tried_names or new_name in {r.candidate.name for r in out if r.candidate}:
            logger.info("tuner (llm): proposal %r for %r was tried before", new_name, proposal.strategy)
            continue
        before = dict(target.get("metrics") or {})
        after: dict[str, Any] = {}
        improved = None
        if candles_by_symbol and not proposal.code:
            from blofin_pipeline.strategies import load_strategy_source
            from blofin_pipeline.strategies.base import signal_fn

            fn = signal_fn(load_strategy_source(str(target["code"]), origin=f"<registered {proposal.strategy}>"))
            common = {"holdout": holdout, "fee": fee, "slippage": slippage, "timeframe": timeframe,
                      "objective": objective}
            before = heldout_metrics(fn, defaults, candles_by_symbol, **common)
            after = heldout_metrics(fn, params, candles_by_symbol, **common)
            improved = bool(after["objective"] > before["objective"])
        candidate = Candidate(
            name=new_name, category=str(target.get("category")), code=new_code,
            rationale=f"{proposal.rationale} (diagnosis: {proposal.diagnosis})", origin="tuner",
            parent=_parent_ref(proposal.strategy, target.get("version")), params=params,
            meta={"mode": "llm", "code_changed": bool(proposal.code), "improved": improved},
        )
        out.append(TuneResult(strategy=proposal.strategy, candidate=candidate, params=params,
                              before_metrics=before, after_metrics=after,
                              diagnosis=[proposal.diagnosis] + list(target.get("diagnosis") or []),
                              objective=objective, improved=improved,
                              tuning={"method": "llm", "code_changed": bool(proposal.code)}))
    logger.info("tuner (llm): %d of %d proposals kept", len(out), len(reply.proposals))
    return out


def tune(
    targets: Sequence[Mapping[str, Any]],
    candles_by_symbol: Mapping[str, pd.DataFrame],
    *,
    llm: LLMCaller | None = None,
    n_trials: int = 20,
    seed: int = 0,
    timeframe: str | None = None,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    holdout: float = HOLDOUT,
    n_folds: int = N_FOLDS,
    objective: str = "sharpe",
    prompt_extra: Mapping[str, Any] | None = None,
    run_date: str | None = None,
    tried_names: Collection[str] = frozenset(),
) -> list[TuneResult]:
    """Tune every target (dicts with name, code, version, and for online: metrics, params ...).

    Each target's Optuna seed derives from (seed, run_date, name): reproducible for a
    date, different from one day to the next. Tuned versions whose names are in
    `tried_names` (already registered) are never proposed again.

    Offline each target is loaded from its (registered, already checked) code and tuned
    with Optuna; a target that fails to load or to tune is logged and skipped so the
    others still run. Online, the diagnoses are computed first (when candles are given)
    and sent to the LLM with the targets.
    """
    from blofin_pipeline.backtest import run_backtest
    from blofin_pipeline.strategies import load_strategy_source
    from blofin_pipeline.strategies.base import signal_fn

    if llm is not None:
        enriched = []
        for target in targets:
            target = dict(target)
            if candles_by_symbol and not target.get("diagnosis"):
                cls = load_strategy_source(str(target["code"]), origin=f"<registered {target['name']}>")
                fn = signal_fn(cls)
                found: list[str] = []
                for symbol, candles in candles_by_symbol.items():
                    early, _ = split_candles(candles, holdout)
                    result = run_backtest(early, fn(early, dict(cls.params)), fee=fee, slippage=slippage,
                                          timeframe=timeframe)
                    found += diagnose(result, candles=early, label=symbol)
                target["diagnosis"] = found
                target.setdefault("params", dict(cls.params))
                target.setdefault("param_space", {k: list(v) for k, v in cls.param_space.items()})
                target.setdefault("category", cls.category)
            enriched.append(target)
        if not enriched:
            return []
        return tune_online(enriched, llm, candles_by_symbol, prompt_extra=prompt_extra, timeframe=timeframe,
                           fee=fee, slippage=slippage, holdout=holdout, objective=objective,
                           tried_names=tried_names)

    results = []
    for target in targets:
        name = str(target.get("name"))
        target_seed = int(rng_for(seed, run_date or "", "tune", name).integers(2**31 - 1))
        try:
            cls = load_strategy_source(str(target["code"]), origin=f"<registered {name}>")
            results.append(tune_strategy(cls, str(target["code"]), candles_by_symbol, n_trials=n_trials,
                                         seed=target_seed, timeframe=timeframe, fee=fee, slippage=slippage,
                                         holdout=holdout, n_folds=n_folds, objective=objective,
                                         version=target.get("version"), tried_names=tried_names))
        except (StrategyError, BacktestError, ConfigError) as err:
            logger.warning("tuner: strategy %r not tuned: %s", name, err)
    return results
