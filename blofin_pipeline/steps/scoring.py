"""`score_strategies` and `backtest_candidates`: out-of-sample scores into the database.

How one strategy is scored on one symbol (walk-forward, deflated Sharpe, composite
score) is `backtest.scoring`; these steps choose what to score, record the trials and
write the rows.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest.scoring import score_one
from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.market.window import load_window, score_window, window_label
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
from blofin_pipeline.strategies import registry, status
from blofin_pipeline.strategies.registry import StrategyRecord
from blofin_pipeline.strategies.sanitize import safe_reason

logger = logging.getLogger(__name__)


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
    rows, failures = [], {}
    for record in records:
        try:
            with record.signal_function() as fn:  # in the sandbox unless a shipped built-in
                window = score_window(ctx)
                per_symbol = [score_one(ctx, record.name, record.version, fn, s, c, n_total, phase, window)
                              for s, c in candles.items()]
        except PipelineError as err:
            failures[record.ref] = safe_reason(err)
            logger.error("scoring %s failed: %s", record.ref, failures[record.ref])
            continue
        upsert_strategy_results(store, per_symbol)
        rows.extend(per_symbol)
        mean = float(np.mean([r["score"] for r in per_symbol]))
        logger.info("scored %-40s score %+.3f  sharpe %s", record.ref, mean,
                    " ".join(f"{r['symbol']}={r['sharpe']:+.2f}" for r in per_symbol))
    return rows, failures


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
    the rejected are archived with their reasons and noted for the designer."""
    from blofin_pipeline.strategies import check_strategy

    accepted: list[StrategyRecord] = []
    rejected: dict[str, list[str]] = {}
    for record in candidates:
        report = check_strategy(record.code, check_frame, timeout=check_timeout, origin=record.ref)
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
