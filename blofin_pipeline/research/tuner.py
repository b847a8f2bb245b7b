"""The tuner: propose better parameters for the underperformers, judged honestly.

Each symbol's candles are split in time (`research.holdout`): the offline tuner searches
parameters with Optuna (TPE, seeded) on the walk-forward objective of the tuning part
only; the default and the tuned parameters are then both judged on the held-out part,
which the search never saw. `before_metrics` and `after_metrics` are those held-out
metrics, averaged over symbols, with the per-symbol figures kept. The diagnosis
(`research.diagnosis`) is made on the tuning part too.

Online, the tune step's model gets the diagnosis, the metrics, the parameters with their
`param_space` and the code (`llm.prompts.build_tune_prompt`) and answers a `TuneReply`;
each proposal becomes a candidate with a parent link. Parameter-only proposals are judged
on the held-out part like offline ones; code changes are not run here (`backtest_candidates`
checks and scores them) and get no fitted_until: new code cannot be scored as its parent.

A tuned candidate keeps the parent's file with the new defaults in `params`, a new name
``f"{base}_t{hash6}"``, `parent` ``"name@version"`` and, for parameter changes, meta
`fitted_until`: the last bar handed to the tuner (scoring never tests the tuned parameters
on a bar up to it, docs/protocol/tune.md). The keep decision (`improved`) is the hold-out's.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from blofin_pipeline.costs import Costs
from blofin_pipeline.exceptions import BacktestError, ConfigError, StrategyError
from blofin_pipeline.research.candidates import (
    Candidate,
    parent_ref,
    rng_for,
    short_hash,
    tuned_name,
)
from blofin_pipeline.research.diagnosis import diagnose_tuning_part, tuning_part_report
from blofin_pipeline.research.holdout import (
    HOLDOUT,
    MIN_BARS_PER_PART,
    N_FOLDS,
    SignalFn,
    heldout_metrics,
    last_bar,
    split_candles,
    walk_forward_objective,
)
from blofin_pipeline.research.reconcile import reconcile
from blofin_pipeline.research.strategy_source import merge_params, rewrite_class_attrs
from blofin_pipeline.strategies.runner import signal_function
from blofin_pipeline.strategies.sanitize import safe_reason

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMCaller
    from blofin_pipeline.llm.prefix import DayPrefix

logger = logging.getLogger(__name__)

FAILED_TRIAL = -1e9         # objective of a trial whose parameters break the strategy


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
        return {**asdict(self), "candidate": self.candidate.to_dict() if self.candidate else None}


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


def _tuning_parts(candles_by_symbol: Mapping[str, pd.DataFrame], holdout: float, name: str
                  ) -> dict[str, pd.DataFrame]:
    """Each symbol's tuning part; ConfigError when either part is too short to judge."""
    tuning_part = {}
    for symbol, candles in candles_by_symbol.items():
        early, late = split_candles(candles, holdout)
        if len(early) < MIN_BARS_PER_PART or len(late) < MIN_BARS_PER_PART // 2:
            raise ConfigError(f"tuner: {symbol} has {len(candles)} bars, too few to tune {name!r} "
                              f"with a {holdout:.0%} hold-out")
        tuning_part[symbol] = early
    return tuning_part


def _search(fn: SignalFn, name: str, defaults: Mapping[str, Any], space: Mapping[str, Sequence[Any]],
            tuning_part: Mapping[str, pd.DataFrame], *, n_trials: int, seed: int, n_folds: int, costs: Costs,
            objective: str) -> Any:
    """The finished Optuna study; its first trial is the defaults."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({k: v for k, v in defaults.items() if k in space})

    def objective_fn(trial: Any) -> float:
        params = merge_params(defaults, _suggest(trial, space), space)
        try:
            value = walk_forward_objective(fn, params, tuning_part, n_folds=n_folds, costs=costs,
                                           objective=objective)
        except (StrategyError, BacktestError) as err:
            # A parameter corner where the strategy breaks is a bad trial, not a crash.
            logger.info("tuner: %s trial %d failed: %s", name, trial.number, err)
            return FAILED_TRIAL
        return value if math.isfinite(value) else FAILED_TRIAL

    study.optimize(objective_fn, n_trials=n_trials)
    return study


def tune_strategy(
    strategy: Any,
    code: str,
    candles_by_symbol: Mapping[str, pd.DataFrame],
    *,
    n_trials: int = 20,
    seed: int = 0,
    costs: Costs = Costs(),
    holdout: float = HOLDOUT,
    n_folds: int = N_FOLDS,
    objective: str = "sharpe",
    version: Any = None,
    tried_names: Collection[str] = frozenset(),
) -> TuneResult:
    """Optuna search on the tuning part, before/after judged on the held-out part.

    `strategy` is the strategy's signal function (`strategies.runner.signal_function`:
    every trial runs in the sandbox unless it is a shipped built-in). The best trial whose
    tuned name (a hash of its parameters) is not in `tried_names` wins, so a version
    registered on an earlier day is not proposed again.
    """
    name = strategy.name
    space = dict(strategy.param_space)
    if not space:
        raise StrategyError(f"strategy {name!r} has an empty param_space: nothing to tune")
    if n_trials < 1:
        raise ConfigError(f"tuner: n_trials must be >= 1, got {n_trials}")
    if not candles_by_symbol:
        raise ConfigError(f"tuner: no candles to tune strategy {name!r} on")
    fn, tuning_part = strategy, _tuning_parts(candles_by_symbol, holdout, name)
    defaults = dict(strategy.params)
    diagnosis = diagnose_tuning_part(fn, defaults, candles_by_symbol, holdout=holdout, costs=costs)
    study = _search(fn, name, defaults, space, tuning_part, n_trials=n_trials, seed=seed, n_folds=n_folds,
                    costs=costs, objective=objective)
    best, skipped = _best_untried(study, defaults, space, name, tried_names)
    judge = {"holdout": holdout, "costs": costs, "objective": objective}
    before = heldout_metrics(fn, defaults, candles_by_symbol, **judge)
    after = heldout_metrics(fn, best, candles_by_symbol, **judge) if best != defaults else before
    improved = bool(after["objective"] > before["objective"]) if best != defaults else False
    _, first_held = split_candles(next(iter(candles_by_symbol.values())), holdout)
    tuning = {
        "method": "optuna-tpe", "n_trials": n_trials, "seed": seed, "n_folds": n_folds,
        "holdout": holdout, "objective": objective,
        "tuning_objective_default": study.trials[0].value, "tuning_objective_best": study.best_value,
        "held_out_from": str(first_held.index[0]), "fitted_until": last_bar(candles_by_symbol),
        "skipped_tried": skipped,
    }
    result = TuneResult(strategy=name, candidate=None, params=best, before_metrics=before,
                        after_metrics=after, diagnosis=diagnosis, objective=objective,
                        improved=improved, tuning=tuning)
    if best != defaults:
        result = replace(result, candidate=_tuned_candidate(strategy, code, version, result))
    logger.info("tuner: %s held-out %s %.3f -> %.3f (%s)", name, objective, before["objective"],
                after["objective"], "improved" if improved else "not improved")
    return result


def _tuned_candidate(strategy: Any, code: str, version: Any, result: TuneResult) -> Candidate:
    """The parent's file with the tuned defaults and name, and a rationale quoting the evidence."""
    name, objective, tuning, best = strategy.name, result.objective, result.tuning, result.params
    new_name = tuned_name(name, best)
    new_code = rewrite_class_attrs(code, {"name": new_name, "params": best}, owner=name)
    rationale = (
        f"Optuna ({tuning['n_trials']} trials, seed {tuning['seed']}) on the walk-forward {objective} of the "
        f"first {1 - tuning['holdout']:.0%} of the data moved {_changes(strategy.params, best)}. "
        f"Held-out {objective}: {result.before_metrics['objective']:.3f} -> {result.after_metrics['objective']:.3f}."
        + (f" Diagnosis: {'; '.join(result.diagnosis[:3])}." if result.diagnosis else "")
    )
    return Candidate(name=new_name, category=strategy.category, code=new_code,
                     rationale=rationale, origin="tuner", parent=parent_ref(name, version),
                     params=best, meta={"mode": "offline", "improved": result.improved,
                                        "fitted_until": tuning["fitted_until"]})


def _best_untried(study: Any, defaults: Mapping[str, Any], space: Mapping[str, Sequence[Any]], name: str,
                  tried_names: Collection[str]) -> tuple[dict[str, Any], int]:
    """(params of the best finished trial not tried before, number of better ones skipped).

    Returns the defaults when no trial beats them with new parameters.
    """
    default_value = study.trials[0].value
    finished = [t for t in study.trials
                if t.value is not None and math.isfinite(t.value) and t.value > FAILED_TRIAL]
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
    keys = ("name", "category", "params", "param_space", "metrics", "diagnosis", "span", "code", "failed_changes")
    return {**(extra or {}), "candidates": [{k: t.get(k) for k in keys} for t in targets]}


def tune_online(
    targets: Sequence[Mapping[str, Any]],
    llm: LLMCaller,
    candles_by_symbol: Mapping[str, pd.DataFrame] | None = None,
    *,
    prompt_extra: Mapping[str, Any] | None = None,
    prefix: DayPrefix | None = None,
    costs: Costs = Costs(),
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
    from blofin_pipeline.llm.schemas import TuneReply

    by_name = {str(t["name"]): t for t in targets}
    prompt = build_tune_prompt(tune_prompt_context(targets, prompt_extra), prefix)
    bounds = {n: dict(t.get("param_space") or {}) for n, t in by_name.items()}
    reply = llm("tune", prompt, TuneReply, param_bounds=bounds)
    out: list[TuneResult] = []
    for proposal in reply.proposals:
        taken = {r.candidate.name for r in out if r.candidate} | set(tried_names)
        result = _proposal_result(proposal, by_name, candles_by_symbol, taken,
                                  {"holdout": holdout, "costs": costs, "objective": objective})
        if result is not None:
            out.append(result)
    logger.info("tuner (llm): %d of %d proposals kept", len(out), len(reply.proposals))
    return out


def _proposal_result(proposal: Any, by_name: Mapping[str, Mapping[str, Any]],
                     candles_by_symbol: Mapping[str, pd.DataFrame] | None, taken: Collection[str],
                     common: dict[str, Any]) -> TuneResult | None:
    """One LLM proposal as a TuneResult, or None (with the reason logged) when it is dropped."""
    from blofin_pipeline.llm.schemas import check_params_in_bounds

    target = by_name.get(proposal.strategy)
    if target is None:
        logger.warning("tuner (llm): proposal for unknown strategy %r dropped", proposal.strategy)
        return None
    space = dict(target.get("param_space") or {})
    try:
        check_params_in_bounds(proposal.strategy, proposal.params, space)
    except ValueError as err:
        logger.warning("tuner (llm): %s", err)
        return None
    defaults = dict(target.get("params") or {})
    params = merge_params(defaults, proposal.params, space)
    new_name = tuned_name(proposal.strategy, params, short_hash(proposal.code) if proposal.code else "")
    try:
        new_code = reconcile(proposal.code or str(target["code"]), name=new_name, params=params,
                             category=str(target.get("category")), owner=proposal.strategy).code
    except StrategyError as err:
        logger.warning("tuner (llm): proposal for %r dropped: %s", proposal.strategy, err)
        return None
    if params == defaults and not proposal.code:
        logger.info("tuner (llm): proposal for %r changes nothing", proposal.strategy)
        return None
    if new_name in taken:
        logger.info("tuner (llm): proposal %r for %r was tried before", new_name, proposal.strategy)
        return None
    before, after, improved = dict(target.get("metrics") or {}), {}, None
    if candles_by_symbol and not proposal.code:
        with _signal_function(target) as fn:
            before = heldout_metrics(fn, defaults, candles_by_symbol, **common)
            after = heldout_metrics(fn, params, candles_by_symbol, **common)
        improved = bool(after["objective"] > before["objective"])
    candidate = Candidate(
        name=new_name, category=str(target.get("category")), code=new_code,
        rationale=f"{proposal.rationale} (diagnosis: {proposal.diagnosis})", origin="tuner",
        parent=parent_ref(proposal.strategy, target.get("version")), params=params,
        meta={"mode": "llm", "code_changed": bool(proposal.code), "improved": improved,  # code: no fitted_until
              **({"fitted_until": last_bar(candles_by_symbol)} if candles_by_symbol and not proposal.code else {})},
    )
    return TuneResult(strategy=proposal.strategy, candidate=candidate, params=params, before_metrics=before,
                      after_metrics=after, diagnosis=[proposal.diagnosis] + list(target.get("diagnosis") or []),
                      objective=common["objective"], improved=improved,
                      tuning={"method": "llm", "code_changed": bool(proposal.code)})


def _with_diagnosis(target: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame] | None, *,
                    holdout: float, costs: Costs) -> dict[str, Any]:
    """An online target with its diagnosis and that backtest's metrics, params, space and category."""
    target = dict(target)
    if candles_by_symbol and not target.get("diagnosis"):
        with _signal_function(target) as fn:
            target.update(tuning_part_report(fn, fn.params, candles_by_symbol, holdout=holdout, costs=costs))
        target.setdefault("params", dict(fn.params))
        target.setdefault("param_space", {k: list(v) for k, v in fn.param_space.items()})
        target.setdefault("category", fn.category)
    return target


def _signal_function(target: Mapping[str, Any]) -> Any:
    """A target's signal function: in the kernel sandbox unless it is a shipped built-in."""
    return signal_function(str(target["code"]), origin=str(target.get("origin") or "tuner"), label=str(target["name"]))


def tune(
    targets: Sequence[Mapping[str, Any]],
    candles_by_symbol: Mapping[str, pd.DataFrame],
    *,
    llm: LLMCaller | None = None,
    n_trials: int = 20,
    seed: int = 0,
    costs: Costs = Costs(),
    holdout: float = HOLDOUT,
    n_folds: int = N_FOLDS,
    objective: str = "sharpe",
    prompt_extra: Mapping[str, Any] | None = None,
    prefix: DayPrefix | None = None,
    run_date: str | None = None,
    tried_names: Collection[str] = frozenset(),
) -> list[TuneResult]:
    """Tune every target (dicts with name, code, version, and for online: metrics, params ...).

    Each target's Optuna seed derives from (seed, run_date, name): reproducible for a
    date, different from one day to the next. Tuned versions whose names are in
    `tried_names` (already registered) are never proposed again.

    Offline each target is tuned with Optuna, every trial in the strategy sandbox; one that
    fails to load or to tune is logged and skipped so the others still run. Online, the
    diagnoses are computed first (when candles are given) and sent to the LLM with the targets.
    """
    if llm is not None:
        enriched = [_with_diagnosis(t, candles_by_symbol, holdout=holdout, costs=costs) for t in targets]
        if not enriched:
            return []
        return tune_online(enriched, llm, candles_by_symbol, prompt_extra=prompt_extra, prefix=prefix, costs=costs,
                           holdout=holdout, objective=objective, tried_names=tried_names)

    results = []
    for target in targets:
        name = str(target.get("name"))
        target_seed = int(rng_for(seed, run_date or "", "tune", name).integers(2**31 - 1))
        try:
            with _signal_function(target) as fn:
                results.append(tune_strategy(fn, str(target["code"]), candles_by_symbol, n_trials=n_trials,
                                             seed=target_seed, costs=costs, holdout=holdout, n_folds=n_folds,
                                             objective=objective, version=target.get("version"),
                                             tried_names=tried_names))
        except (StrategyError, BacktestError, ConfigError) as err:
            logger.warning("tuner: strategy %r not tuned: %s", name, safe_reason(err))
    return results
