"""The research steps: `design_strategies`, `tune_strategies`, `train_ml_models`.

Each takes the run's context and an open Store, calls the domain code (designer,
tuner, ml) and persists what it produced, keyed by the run date. `llm` is the LLM
connection (the Airflow hook), or None for the offline mode.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import LLMBudgetExceeded, PipelineError, StrategyError
from blofin_pipeline.market.window import load_window
from blofin_pipeline.steps.llm_day import day_prefix, llm_caller, tune_targets
from blofin_pipeline.steps.replace import ML_PHASE, withdraw_ml, withdraw_research
from blofin_pipeline.steps.runner import step
from blofin_pipeline.store import Store
from blofin_pipeline.store.knowledge import add_knowledge, rejections_since
from blofin_pipeline.store.results import (
    day_scores,
    upsert_ensemble_results,
    upsert_model_results,
    upsert_strategy_results,
)
from blofin_pipeline.strategies import registry, status

if TYPE_CHECKING:
    from blofin_pipeline.llm.batch import BatchAnswers
    from blofin_pipeline.llm.caller import LLMConnection

logger = logging.getLogger(__name__)

REJECTED_FEEDBACK_DAYS = 30
DAY_METRICS = ("sharpe", "deflated_sharpe", "total_return", "max_drawdown", "win_rate", "n_trades", "turnover")
ML_TREES = 100  # trees and boosting rounds per model in the daily run (bench/ml.py measures more)


def _mode(llm: LLMConnection | None) -> str:
    return "offline" if llm is None else "llm"


def portfolio(store: Store, run_date: str, *, with_code: bool = False) -> list[dict[str, Any]]:
    """The strategies active as the run date started, with that date's per-symbol scores."""
    rows = day_scores(store, run_date)
    scored: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        scored.setdefault(f"{r['strategy']}@{r['version']}", []).append(r)
    out = []
    for record in status.portfolio_at_start(store, run_date):
        mine = scored.get(record.ref, [])
        scores = [r["score"] for r in mine if r["score"] is not None]
        out.append({
            "name": record.name, "version": record.version, "ref": record.ref, "category": record.category,
            "origin": record.origin, "params": record.params, "param_space": record.param_space,
            "scores": {r["symbol"]: r["score"] for r in mine},
            "metrics": {r["symbol"]: {k: r[k] for k in DAY_METRICS} for r in mine},
            "score": float(np.mean(scores)) if scores else None,
            **({"code": record.code} if with_code else {}),
        })
    return out


@step
def design_strategies(ctx: RunContext, store: Store, *, llm: LLMConnection | None = None,
                      batch: BatchAnswers | None = None) -> dict[str, Any]:
    """Design `n_designs` new candidates from the portfolio's gaps, the regime and the
    performers; register them for `backtest_candidates`. `batch`: the answers of the
    step's Message Batch (batch mode, second run)."""
    from blofin_pipeline.research.designer import DesignContext, design
    from blofin_pipeline.research.regime import detect_regimes

    n = ctx.config.n_designs
    withdraw_research(store, ctx.run_date, "designer")
    if n == 0:
        return {"mode": _mode(llm), "designed": [], "note": "n_designs=0"}
    candles = load_window(ctx, store)
    regimes = detect_regimes(candles)
    hashes, names = registry.known_hashes_and_names(store, ctx.run_date)
    since = (pd.Timestamp(ctx.run_date) - pd.Timedelta(days=REJECTED_FEEDBACK_DAYS)).strftime("%Y-%m-%d")
    rejected = []
    for r in rejections_since(store, since, ctx.run_date):
        detail = json.loads(r["detail"])
        hashes.add(detail.get("code_hash", ""))
        rejected.append({"name": r["subject"], "date": r["run_date"], "reasons": detail.get("reasons", [])})
    context = DesignContext(
        run_date=ctx.run_date, symbols=tuple(ctx.config.symbols), regimes=regimes,
        strategies=tuple(portfolio(store, ctx.run_date, with_code=llm is not None)),
        tried_names=frozenset(names), tried_hashes=frozenset(h for h in hashes if h), rejected=tuple(rejected),
        screen_candles=next(iter(candles.values())),
    )
    caller = llm_caller(llm, ctx, store, batch=batch, batchable=True)
    prefix = day_prefix(ctx, store, llm, candles) if llm is not None else None
    try:
        candidates = design(context, n, llm=caller, seed=ctx.config.sample_seed, prefix=prefix)
    except LLMBudgetExceeded as err:
        logger.warning("design_strategies stopped: %s", err)
        return {"mode": _mode(llm), "designed": [], "stopped": f"LLM budget spent: {err}"}
    registered = []
    for c in candidates:
        try:
            record = registry.register(store, name=c.name, category=c.category, params=dict(c.params),
                                       param_space=_param_space_of(c.code), code=c.code, origin="designer",
                                       run_date=ctx.run_date, status="candidate", rationale=c.rationale)
        except StrategyError as err:
            logger.warning("design %s not registered: %s", c.name, err)
            continue
        add_knowledge(store, ctx.run_date, "designed", record.ref, {
            "mode": _mode(llm), "category": c.category, "rationale": c.rationale, "code_hash": record.code_hash,
            **{k: v for k, v in c.meta.items() if isinstance(v, (str, int, float, list, dict))}})
        registered.append(record.ref)
        logger.info("designed %s (%s): %s", record.ref, c.category, c.rationale[:200])
    return {"mode": _mode(llm), "designed": registered,
            "regimes": {s: r.get("regime") for s, r in regimes.items()}}


def _param_space_of(code: str) -> dict[str, Any]:
    """param_space declared in a strategy file, read without running it."""
    from blofin_pipeline.research.strategy_source import read_class_literals

    try:
        space = read_class_literals(code, "param_space").get("param_space", {})
    except PipelineError:
        return {}
    return space if isinstance(space, dict) else {}


@step
def tune_strategies(ctx: RunContext, store: Store, *, llm: LLMConnection | None = None,
                    batch: BatchAnswers | None = None) -> dict[str, Any]:
    """Tune the `n_tunes` worst-scoring active strategies; register tuned versions.
    `batch`: the answers of the step's Message Batch (batch mode, second run)."""
    from blofin_pipeline.research.tuner import tune

    cfg = ctx.config
    withdraw_research(store, ctx.run_date, "tuner")
    if cfg.n_tunes == 0:
        return {"mode": _mode(llm), "tuned": [], "note": "n_tunes=0"}
    targets = tune_targets(portfolio(store, ctx.run_date, with_code=True), cfg.n_tunes)
    ref_of = {t["name"]: t["ref"] for t in targets}
    if not targets:
        return {"mode": _mode(llm), "tuned": [], "note": "no scored strategies to tune"}
    candles = load_window(ctx, store)
    _, names = registry.known_hashes_and_names(store, ctx.run_date)
    caller = llm_caller(llm, ctx, store, batch=batch, batchable=True)
    prefix = day_prefix(ctx, store, llm, candles) if llm is not None else None
    try:
        results = tune(targets, candles, llm=caller, n_trials=cfg.tune_trials, seed=cfg.sample_seed,
                       costs=cfg.costs, run_date=ctx.run_date, tried_names=names, prefix=prefix)
    except LLMBudgetExceeded as err:
        logger.warning("tune_strategies stopped: %s", err)
        return {"mode": _mode(llm), "tuned": [], "stopped": f"LLM budget spent: {err}"}
    tuned, unchanged = [], []
    for res in results:
        if res.candidate is None or res.improved is False:
            # Nothing new, or worse on the held-out part than the parent: not worth a version.
            why = "kept parameters" if res.candidate is None else "no improvement on held-out data"
            unchanged.append(ref_of.get(res.strategy, res.strategy))
            add_knowledge(store, ctx.run_date, "tuned", ref_of.get(res.strategy, res.strategy), {
                "mode": _mode(llm), "result": why, "params": res.params, "diagnosis": res.diagnosis,
                "before": res.before_metrics, "after": res.after_metrics})
            logger.info("tune %s: %s (held-out %s before %s after %s)", res.strategy, why, res.objective,
                        _fmt(res.before_metrics.get(res.objective)), _fmt(res.after_metrics.get(res.objective)))
            continue
        c = res.candidate
        try:
            record = registry.register(store, name=c.name, category=c.category, params=dict(c.params),
                                       param_space=_param_space_of(c.code), code=c.code, origin="tuner",
                                       run_date=ctx.run_date, status="candidate", parent=c.parent,
                                       rationale=c.rationale)
        except StrategyError as err:
            logger.warning("tuned %s not registered: %s", c.name, err)
            continue
        add_knowledge(store, ctx.run_date, "tuned", record.ref, {
            "mode": _mode(llm), "parent": c.parent, "params": res.params, "diagnosis": res.diagnosis,
            "before": res.before_metrics, "after": res.after_metrics, "improved": res.improved,
            "objective": res.objective})
        tuned.append(record.ref)
        logger.info("tuned %s -> %s: %s; held-out %s before %s after %s", c.parent, record.ref,
                    "; ".join(res.diagnosis[:3]) or "no failure pattern", res.objective,
                    _fmt(res.before_metrics.get(res.objective)), _fmt(res.after_metrics.get(res.objective)))
    return {"mode": _mode(llm), "targets": [t["ref"] for t in targets], "tuned": tuned, "unchanged": unchanged}


def _fmt(value: Any) -> str:
    try:
        return f"{float(value):+.3f}"
    except (TypeError, ValueError):
        return "n/a"


@step
def train_ml_models(ctx: RunContext, store: Store) -> dict[str, Any]:
    """Train and evaluate the ML models and ensembles; upsert their rows."""
    from blofin_pipeline.ml.config import MLConfig
    from blofin_pipeline.ml.pipeline import train_and_evaluate

    cfg = ctx.config
    withdraw_ml(store, ctx.run_date)
    if not cfg.ml_enabled:
        return {"note": "ml_enabled=false: skipped"}
    candles = load_window(ctx, store)
    result = train_and_evaluate(candles, run_date=ctx.run_date, artefact_dir=ctx.artefacts_dir,
                                config=MLConfig(fee=cfg.fee, slippage=cfg.slippage, seed=cfg.sample_seed,
                                                tree_estimators=ML_TREES, boost_rounds=ML_TREES))
    models = [dict(m, run_date=ctx.run_date, status="active", archive_reason=None) for m in result.models]
    ensembles = [dict(e, run_date=ctx.run_date, status="active", archive_reason=None) for e in result.ensembles]
    upsert_model_results(store, models)
    upsert_ensemble_results(store, ensembles)
    as_strategy = score_best_ensemble(ctx, store, result, candles) if result.ensembles else None
    best = sorted(result.models, key=lambda m: -(m["f1"] or 0))[:3]
    return {"models": len(models), "ensembles": len(ensembles), "ensemble_as_strategy": as_strategy,
            "best_models": [{"model": m["model_name"], "f1": round(m["f1"], 4), "accuracy": round(m["accuracy"], 4)}
                            for m in best]}


ML_STRATEGY_CODE = '''"""ML ensemble {ensemble} ({method}) on {symbol}, trained on {run_date}.

Not a rule file: its positions come from the saved artefact below. Over the scoring
window it is judged on its walk-forward out-of-sample positions; from here on:
    signals_from_artefact(ARTEFACT, candles_by_symbol, SYMBOL)
"""
from blofin_pipeline.ml.inference import signals_from_artefact

ARTEFACT = {artefact!r}
SYMBOL = {symbol!r}
'''


def score_best_ensemble(ctx: RunContext, store: Store, result: Any, candles: dict[str, pd.DataFrame]) -> str:
    """The day's most accurate ensemble, scored as a strategy beside the others.

    Its positions are the walk-forward out-of-sample ones (no bar judged by a model that
    saw it), backtested with the run's fee and slippage; the DSR counts it as one more
    trial. It joins the ranking as origin 'ml', category 'ml', named for its ensemble and
    the date (`ml_<ensemble>_<yyyymmdd>`), and supersedes the ML strategies active when
    the date started: today's models saw newer data, and yesterday's cannot be scored
    honestly on a window their training overlaps.
    """
    from blofin_pipeline.backtest import run_backtest
    from blofin_pipeline.backtest.scoring import result_row, with_deflated_sharpe
    from blofin_pipeline.store.registry import record_trials, trial_count

    cfg = ctx.config
    best = max(result.ensembles, key=lambda e: (e["accuracy"] or 0.0, e["ensemble_name"]))
    symbol = best["symbol"]
    positions = result.oos_positions[best["ensemble_name"]]
    window = candles[symbol].loc[positions.index]
    bt = run_backtest(window, positions, cfg.fee, cfg.slippage, timeframe=cfg.timeframe)
    name = ("ml_" + "".join(ch if ch.isalnum() else "_" for ch in best["ensemble_name"].lower())
            + "_" + ctx.run_date.replace("-", ""))
    code = ML_STRATEGY_CODE.format(ensemble=best["ensemble_name"], method=best["method"], symbol=symbol,
                                   run_date=ctx.run_date, artefact=best["artefact_path"])
    record = registry.register(store, name=name, category="ml", params={"ensemble": best["ensemble_name"]},
                               param_space={}, code=code, origin="ml", run_date=ctx.run_date, status="active",
                               rationale=f"most accurate ensemble of {ctx.run_date} ({best['accuracy']:.3f})")
    for old in status.statuses_at(store, ctx.run_date):
        if old.origin == "ml" and old.status == "active" and old.ref != record.ref:
            status.set_status(store, old.name, old.version, "archived", f"superseded by {record.ref}",
                              run_date=ctx.run_date, step="train_ml_models")
            logger.info("ML strategy %s superseded by %s", old.ref, record.ref)
    record_trials(store, ctx.run_date, [(record.ref, 1)])
    n_trials = trial_count(store, ctx.run_date, [*((r.ref, len(cfg.symbols)) for r in
                                                  status.portfolio_at_start(store, ctx.run_date)), (record.ref, 1)])
    metrics = with_deflated_sharpe(bt.metrics, bt.returns.to_numpy(), n_trials)
    row = result_row(ctx, (record.name, record.version, symbol, ML_PHASE), (positions.index[0], ctx.data_end),
                     metrics, {"ensemble": best["ensemble_name"], "members": best["members"]}, bt.equity)
    upsert_strategy_results(store, [row])
    logger.info("ML ensemble %s scored as strategy %s on %s: sharpe %.2f, DSR %.2f", best["ensemble_name"],
                record.ref, symbol, metrics["sharpe"], metrics["dsr"])
    return record.ref
