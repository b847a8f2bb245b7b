"""`plan_scoring`, `score_strategies` and `backtest_candidates`: out-of-sample scores into
the database.

How one strategy is scored on one symbol (walk-forward, deflated Sharpe, composite
score) is `backtest.scoring`; these steps choose what to score, record the trials and
write the rows. `plan_scoring` sizes the mapped `score_strategies` tasks from the work
(strategies x symbols x bars), so a Celery deployment spreads a large day over its
workers and a small day pays for one task only. A chunk scores whole strategies (every
symbol of them), so its rows do not depend on how the strategies were split.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest.scoring import Fitted, score_one
from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.market.window import load_window, score_window, window_bars, window_label
from blofin_pipeline.steps.replace import (
    CANDIDATE_PHASE,
    SCORE_PHASE,
    withdraw_candidates,
    withdraw_scores,
)
from blofin_pipeline.steps.runner import step
from blofin_pipeline.store import Store
from blofin_pipeline.store.knowledge import add_knowledge
from blofin_pipeline.store.registry import record_trials, trial_count
from blofin_pipeline.store.results import upsert_strategy_results
from blofin_pipeline.store.runs import delete_scoring_steps
from blofin_pipeline.strategies import registry, status
from blofin_pipeline.strategies.registry import StrategyRecord
from blofin_pipeline.strategies.sanitize import safe_reason

logger = logging.getLogger(__name__)

MAX_SCORE_CHUNKS = 64  # bound on the mapped scoring tasks of a day, whatever its work


def trials_for_day(ctx: RunContext, store: Store, universe: list[StrategyRecord]) -> int:
    """N behind a step's DSR (`store.registry.trial_count`): every out-of-sample series of
    earlier dates plus one per symbol of each version of the step's whole universe. It does
    not depend on the order in which chunks, candidates or dates are scored, so a retried
    date gets the same scores."""
    n_symbols = len(ctx.config.symbols)
    return trial_count(store, ctx.run_date, [(r.ref, n_symbols) for r in universe])


def score_records(ctx: RunContext, store: Store, records: list[StrategyRecord], candles: dict[str, pd.DataFrame],
                  phase: str, universe: list[StrategyRecord]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Score versions on every symbol; returns the rows written and {ref: error} for failures."""
    n_total = trials_for_day(ctx, store, universe)
    record_trials(store, ctx.run_date, [(r.ref, len(candles)) for r in records])
    window = score_window(ctx)
    lineages = [_lineage_or_error(store, r) for r in records]

    def score(record: StrategyRecord, fitted: list[Fitted] | PipelineError) -> list[dict[str, Any]] | PipelineError:
        if isinstance(fitted, PipelineError):
            return fitted
        try:
            with record.signal_function() as fn:  # in the sandbox unless a shipped built-in
                return [score_one(ctx, record.name, record.version, fn, s, c, n_total, phase, window, fitted)
                        for s, c in candles.items()]
        except PipelineError as err:
            return err

    # Sandboxed versions side by side (each computes its signals in its own child while this
    # process backtests another's: 2x on 2 cores); built-ins, which run in this process, one at a
    # time meanwhile (threads would only contend for the interpreter). Results do not depend on
    # the order; the rows are written here, in the records' order.
    outside = [r.origin != "builtin" for r in records]
    with ThreadPoolExecutor(max_workers=_workers(sum(outside))) as pool:
        futures = {i: pool.submit(score, r, f) for i, (r, f) in enumerate(zip(records, lineages)) if outside[i]}
        inside = {i: score(r, f) for i, (r, f) in enumerate(zip(records, lineages)) if not outside[i]}
        results = [futures[i].result() if outside[i] else inside[i] for i in range(len(records))]
    rows, failures = [], {}
    for record, per_symbol in zip(records, results, strict=True):
        if isinstance(per_symbol, PipelineError):
            failures[record.ref] = safe_reason(per_symbol)
            logger.error("scoring %s failed: %s", record.ref, failures[record.ref])
            continue
        upsert_strategy_results(store, per_symbol)
        rows.extend(per_symbol)
        mean = float(np.mean([r["score"] for r in per_symbol]))
        logger.info("scored %-40s score %+.3f  sharpe %s", record.ref, mean,
                    " ".join(f"{r['symbol']}={r['sharpe']:+.2f}" for r in per_symbol))
    return rows, failures


def _workers(n_items: int) -> int:
    """Threads for `n_items` independent versions: one per core this process may use."""
    return max(1, min(n_items, len(os.sched_getaffinity(0))))


def _lineage_or_error(store: Store, record: StrategyRecord) -> list[Fitted] | PipelineError:
    try:
        return fitted_lineage(store, record)
    except PipelineError as err:
        return err


def fitted_lineage(store: Store, record: StrategyRecord) -> list[Fitted]:
    """A tuned version's lineage for `backtest.scoring.fitted_candidates`: while a version
    has a fitted_until, its parent's (fitted_until, params, param_space, ref); empty for a
    version that was not a parameter-only tune."""
    out: list[Fitted] = []
    seen = {record.ref}
    while record.fitted_until and record.parent:
        name, _, version = record.parent.rpartition("@")
        if not name or not version.isdigit():
            raise PipelineError(f"strategy {record.ref}: parent {record.parent!r} is not a name@version")
        parent = registry.get_strategy(store, name, int(version))
        if parent.ref in seen:
            raise PipelineError(f"strategy {record.ref}: its parent chain loops at {parent.ref}")
        out.append((record.fitted_until, parent.params, parent.param_space, parent.ref))
        seen.add(parent.ref)
        record = parent
    return out


def scoring_chunks(n_strategies: int, n_symbols: int, n_bars: int, work_per_chunk: int) -> int:
    """Mapped scoring tasks for a day: one per ``work_per_chunk`` strategy x symbol x bar
    evaluations (rounded up), at least one, at most one per strategy (a chunk scores whole
    strategies) and MAX_SCORE_CHUNKS."""
    if work_per_chunk < 1:
        raise ValueError(f"work_per_chunk must be >= 1, got {work_per_chunk!r}")
    work = n_strategies * n_symbols * n_bars
    return max(1, min(-(-work // work_per_chunk), n_strategies, MAX_SCORE_CHUNKS))


@step
def plan_scoring(ctx: RunContext, store: Store) -> dict[str, Any]:
    """The day's scoring work list, one entry per mapped `score_strategies` task (its
    kwargs), sized from the portfolio at the start of the day, the symbols and the window's
    bars. The step-log rows of an earlier plan's chunks are withdrawn."""
    new = registry.sync_builtins(store)
    active = status.portfolio_at_start(store, ctx.run_date)
    cfg = ctx.config
    bars = max(window_bars(ctx, store).values())  # the window's stored bars (the whole history with 0 days)
    n_chunks = scoring_chunks(len(active), len(cfg.symbols), bars, cfg.score_chunk_work)
    delete_scoring_steps(store, ctx.run_date)
    logger.info("scoring plan: %d strategies x %d symbols x %d bars in %d chunk(s) of about %d evaluations",
                len(active), len(cfg.symbols), bars, n_chunks, cfg.score_chunk_work)
    return {"chunks": [{"chunk": i, "n_chunks": n_chunks} for i in range(n_chunks)], "n_chunks": n_chunks,
            "strategies": len(active), "symbols": len(cfg.symbols), "bars": bars,
            "work": len(active) * len(cfg.symbols) * bars, "builtins_added": new}


@step
def score_strategies(ctx: RunContext, store: Store, *, chunk: int = 0, n_chunks: int = 1) -> dict[str, Any]:
    """Score every active strategy (this chunk's share of them) on every symbol."""
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"chunk {chunk} is not in [0, {n_chunks})")
    new = registry.sync_builtins(store)
    candles = load_window(ctx, store)
    data = window_label(ctx, store)
    active = status.portfolio_at_start(store, ctx.run_date)
    mine = [r for i, r in enumerate(active) if i % n_chunks == chunk]
    withdraw_scores(store, ctx.run_date, {r.ref for r in mine}, {r.ref for r in active} if chunk == 0 else None)
    logger.info("scoring %d of %d strategies active at the start of the day (chunk %d/%d) on %s, %s%s",
                len(mine), len(active), chunk + 1, n_chunks, ", ".join(candles),
                f"window {ctx.config.score_window_days} days" if ctx.config.score_window_days
                else "whole stored history",
                " [SYNTHETIC data]" if data.synthetic else f" [data: {', '.join(data.sources)}]")
    rows, failures = score_records(ctx, store, mine, candles, SCORE_PHASE, universe=active)
    for ref, error in failures.items():
        name, version = ref.rsplit("@", 1)
        status.set_status(store, name, int(version), "archived", f"failed scoring on {ctx.run_date}: {error}",
                          run_date=ctx.run_date, step="score_strategies")
        add_knowledge(store, ctx.run_date, "archived", ref,
                      {"reason": "scoring failed", "error": error, "step": "score_strategies"})
    by_strategy: dict[str, list[float]] = {}
    for r in rows:
        by_strategy.setdefault(f"{r['strategy']}@{r['version']}", []).append(r["score"])
    top = sorted(((float(np.mean(v)), k) for k, v in by_strategy.items()), reverse=True)[:5]
    return {"chunk": chunk, "n_chunks": n_chunks, "builtins_added": new, "scored": len(by_strategy),
            "rows": len(rows), "failed": failures, "top": [{"strategy": k, "score": round(s, 4)} for s, k in top],
            "synthetic": data.synthetic, "data_sources": list(data.sources)}


@step
def backtest_candidates(ctx: RunContext, store: Store, *, check_timeout: float = 60.0) -> dict[str, Any]:
    """Check every candidate (static, sandbox, lookahead) on real window data, score the
    ones that pass and make them active; archive the others with the reasons."""
    portfolio = status.portfolio_at_start(store, ctx.run_date)
    withdraw_candidates(store, ctx.run_date, {r.ref for r in portfolio})
    candidates = status.candidates_on(store, ctx.run_date)
    if not candidates:
        logger.info("no candidates to check")
        return {"candidates": 0, "accepted": [], "rejected": {}}
    candles = load_window(ctx, store)
    accepted, rejected = check_candidates(ctx, store, candidates, next(iter(candles.values())), check_timeout)
    rows, failures = score_records(ctx, store, accepted, candles, CANDIDATE_PHASE, universe=portfolio + candidates)
    for record in accepted:
        if record.ref in failures:
            _decide(ctx, store, record, "archived", f"failed its backtest: {failures[record.ref]}"[:1000])
            rejected[record.ref] = [failures[record.ref]]
            continue
        _decide(ctx, store, record, "active")
        mine = [r for r in rows if r["strategy"] == record.name and r["version"] == record.version]
        add_knowledge(store, ctx.run_date, "accepted", record.ref, {
            "origin": record.origin, "parent": record.parent, "category": record.category,
            "score": float(np.mean([r["score"] for r in mine])),
            "sharpe": {r["symbol"]: r["sharpe"] for r in mine},
        })
    ok = [r.ref for r in accepted if r.ref not in failures]
    logger.info("candidates: %d checked, %d accepted (%s), %d rejected%s", len(candidates), len(ok),
                ", ".join(ok) or "-", len(rejected),
                "".join(f"\n  rejected {ref}: {'; '.join(why)[:300]}" for ref, why in rejected.items()))
    return {"candidates": len(candidates), "accepted": ok, "rejected": rejected}


def _decide(ctx: RunContext, store: Store, record: StrategyRecord, to: str, reason: str | None = None) -> None:
    status.set_status(store, record.name, record.version, to, reason, run_date=ctx.run_date,
                      step="backtest_candidates")


def check_candidates(ctx: RunContext, store: Store, candidates: list[StrategyRecord], check_frame: pd.DataFrame,
                     check_timeout: float) -> tuple[list[StrategyRecord], dict[str, list[str]]]:
    """The static, sandbox and lookahead checks of each candidate: (accepted, {ref: reasons});
    the rejected are archived with their reasons and noted for the designer. The lookahead
    gate checks the parameter sets the scoring walk-forward will try (the version's seed,
    the run's wf_candidates) on `check_frame`, or on the deterministic check frame when
    the window is shorter than the gate needs (logged, and noted in the stage)."""
    from blofin_pipeline.strategies import check_strategy
    from blofin_pipeline.strategies.gate import gate_frame

    accepted: list[StrategyRecord] = []
    rejected: dict[str, list[str]] = {}
    frame, frame_note = gate_frame(check_frame)

    def check(record: StrategyRecord) -> Any:
        return check_strategy(record.code, frame, timeout=check_timeout, origin=record.ref,
                              version=record.version, wf_candidates=ctx.config.wf_candidates)

    # Each check drives its own sandbox child (the work is there, not in this process), so
    # candidates are checked side by side, one per core; the reports are used in order.
    with ThreadPoolExecutor(max_workers=_workers(len(candidates))) as pool:
        reports = list(pool.map(check, candidates))
    for record, report in zip(candidates, reports, strict=True):
        if "lookahead" in report.stages:
            report.stages["lookahead"]["frame"] = frame_note
        if report.accepted and report.name != record.name:
            report.accepted = False
            report.reasons.append(f"registry: the file declares name {report.name!r}, registered as {record.name!r}")
        if report.accepted:
            accepted.append(record)
            continue
        rejected[record.ref] = report.reasons
        _decide(ctx, store, record, "archived", "rejected by checks: " + "; ".join(report.reasons)[:1000])
        add_knowledge(store, ctx.run_date, "rejected", record.ref,
                      {"origin": record.origin, "category": record.category, "reasons": report.reasons,
                       "stages": report.stages, "code_hash": record.code_hash})
        logger.warning("candidate %s rejected: %s", record.ref, "; ".join(report.reasons))
    return accepted, rejected
