"""`score_strategies` and `backtest_candidates`: out-of-sample scores into the database.

Each strategy is scored per symbol on the run's own window (the `score_window_days`
before the run's data end, so a backfilled date is scored on its own data) by
walk-forward evaluation: parameters are chosen on each fold's training part and judged
only on the next, unseen part (see `research.walkforward`).

Deflated Sharpe ratio: the number of trials is every parameter set of every strategy
version ever tried (the `research_trials` table, kept across runs) up to and including
the day's own strategies and candidates, so a lucky winner among many trials is not
taken for skill. The dispersion of trial Sharpe ratios is the
larger of the strategy's own walk-forward dispersion and the sampling error of a Sharpe
ratio under no skill, 1/sqrt(T) per period, T being the out-of-sample bars.

The score is `research.stats.composite_score` of the out-of-sample metrics with that DSR.
"""
from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import DataValidationError, PipelineError
from blofin_pipeline.market.candles import load_candles
from blofin_pipeline.research import registry, stats
from blofin_pipeline.research.registry import StrategyRecord
from blofin_pipeline.research.walkforward import walk_forward
from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)

MIN_SCORE_BARS = 200
CURVE_POINTS = 400  # equity curve points kept per result, for the report's charts


def score_window(ctx: RunContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    return ctx.data_end - pd.Timedelta(days=ctx.config.score_window_days), ctx.data_end


def load_window(ctx: RunContext, store: Store) -> dict[str, pd.DataFrame]:
    """Candles of every configured symbol in the scoring window; clear error when missing."""
    start, end = score_window(ctx)
    out = {}
    for symbol in ctx.config.symbols:
        candles = load_candles(store, symbol, ctx.config.timeframe, start, end)
        if len(candles) < MIN_SCORE_BARS:
            raise DataValidationError(
                f"{symbol} {ctx.config.timeframe}: only {len(candles)} candles between {start} and {end} "
                f"(need {MIN_SCORE_BARS}); run ingest_candles for {ctx.run_date} first")
        out[symbol] = candles
    return out


def _seed(ref: str) -> int:
    return int.from_bytes(hashlib.sha256(ref.encode()).digest()[:4], "little")


def _curve(equity: pd.Series) -> list[list[Any]]:
    step = max(1, math.ceil(len(equity) / CURVE_POINTS))
    sampled = equity.iloc[::step]
    if sampled.index[-1] != equity.index[-1]:
        sampled = pd.concat([sampled, equity.iloc[-1:]])
    return [[ts.isoformat(), round(float(v), 6)] for ts, v in sampled.items()]


def score_one(ctx: RunContext, record: StrategyRecord, strategy_cls: type, symbol: str, candles: pd.DataFrame,
              n_total_trials: int, phase: str) -> dict[str, Any]:
    """Walk-forward score of one strategy version on one symbol, as a result row."""
    cfg = ctx.config

    def signal_fn(frame: pd.DataFrame, params: dict) -> pd.Series:
        return strategy_cls(params).signals(frame)

    wf = walk_forward(candles, signal_fn, dict(strategy_cls.params), dict(strategy_cls.param_space),
                      n_folds=cfg.wf_folds, n_candidates=cfg.wf_candidates, seed=_seed(record.ref),
                      fee=cfg.fee, slippage=cfg.slippage, timeframe=cfg.timeframe)
    metrics = dict(wf.metrics)
    oos = wf.oos_returns.to_numpy()
    noise_std = 1.0 / math.sqrt(max(len(oos), 1))
    trial_std = max(float(wf.trial_sharpe_std), noise_std)
    n_trials = max(n_total_trials, wf.n_trials)
    metrics["dsr"] = stats.deflated_sharpe_ratio(oos, n_trials, trial_std)
    metrics["dsr_n_trials"] = n_trials
    metrics["dsr_trial_sharpe_std"] = trial_std
    score = stats.composite_score(metrics)
    start, end = score_window(ctx)
    return {
        "run_date": ctx.run_date, "strategy": record.name, "version": record.version, "symbol": symbol,
        "timeframe": cfg.timeframe, "phase": phase, "window_start": start.isoformat(), "window_end": end.isoformat(),
        "score": score, "sharpe": metrics["sharpe"], "deflated_sharpe": metrics["dsr"],
        "sortino": metrics["sortino"], "total_return": metrics["total_return"], "cagr": metrics["cagr"],
        "max_drawdown": metrics["max_drawdown"], "calmar": metrics["calmar"], "win_rate": metrics["win_rate"],
        "profit_factor": metrics["profit_factor"], "n_trades": int(metrics["n_trades"]),
        "exposure": metrics["exposure"], "turnover": metrics["turnover"],
        "params": [{"fold": f.fold, "test_start": f.test_start.isoformat(), "params": f.params} for f in wf.folds],
        "metrics": metrics, "equity_curve": _curve(wf.oos_equity),
    }


def trials_for_day(ctx: RunContext, store: Store, universe: list[StrategyRecord]) -> int:
    """Trials behind the day's DSR: every configuration tried on earlier dates, plus those
    of the day's whole universe of strategies. It does not depend on the order in which
    chunks and candidates are scored, so a retried date gets the same scores."""
    per_item = ctx.config.wf_candidates + 1
    earlier = registry.items_tried_before(store, ctx.run_date)
    new_today = {r.ref for r in universe} - earlier
    return registry.total_trials(store, before=ctx.run_date) + per_item * len(new_today)


def score_records(ctx: RunContext, store: Store, records: list[StrategyRecord], candles: dict[str, pd.DataFrame],
                  phase: str, universe: list[StrategyRecord]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Score versions on every symbol; returns the rows written and {ref: error} for failures."""
    n_total = trials_for_day(ctx, store, universe)
    registry.record_trials(store, ctx.run_date, [(r.ref, ctx.config.wf_candidates + 1) for r in records])
    rows, failures = [], {}
    for record in records:
        try:
            cls = record.load()
            per_symbol = [score_one(ctx, record, cls, s, c, n_total, phase) for s, c in candles.items()]
        except PipelineError as err:
            failures[record.ref] = str(err)
            logger.error("scoring %s failed: %s", record.ref, err)
            continue
        store.upsert("strategy_backtest_results", per_symbol, key=("run_date", "strategy", "version", "symbol"))
        rows.extend(per_symbol)
        mean = float(np.mean([r["score"] for r in per_symbol]))
        logger.info("scored %-40s score %+.3f  sharpe %s", record.ref, mean,
                    " ".join(f"{r['symbol']}={r['sharpe']:+.2f}" for r in per_symbol))
    return rows, failures


def score_strategies(ctx: RunContext, store: Store, *, chunk: int = 0, n_chunks: int = 1) -> dict[str, Any]:
    """Score every active strategy (this chunk's share of them) on every symbol."""
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"chunk {chunk} is not in [0, {n_chunks})")
    new = registry.sync_builtins(store, ctx.run_date)
    candles = load_window(ctx, store)
    active = registry.portfolio_at_start(store, ctx.run_date)
    mine = [r for i, r in enumerate(active) if i % n_chunks == chunk]
    logger.info("scoring %d of %d strategies active at the start of the day (chunk %d/%d) on %s, window %d days%s",
                len(mine), len(active), chunk + 1, n_chunks, ", ".join(candles), ctx.config.score_window_days,
                " [SYNTHETIC data]" if ctx.synthetic else "")
    rows, failures = score_records(ctx, store, mine, candles, "score", universe=active)
    for ref, error in failures.items():
        name, version = ref.rsplit("@", 1)
        registry.set_status(store, name, int(version), "archived", f"failed scoring on {ctx.run_date}: {error}")
        registry.add_knowledge(store, ctx.run_date, "archived", ref, {"reason": "scoring failed", "error": error})
    by_strategy: dict[str, list[float]] = {}
    for r in rows:
        by_strategy.setdefault(f"{r['strategy']}@{r['version']}", []).append(r["score"])
    top = sorted(((float(np.mean(v)), k) for k, v in by_strategy.items()), reverse=True)[:5]
    return {"chunk": chunk, "n_chunks": n_chunks, "builtins_added": new, "scored": len(by_strategy),
            "rows": len(rows), "failed": failures, "top": [{"strategy": k, "score": round(s, 4)} for s, k in top],
            "synthetic": ctx.synthetic}


def backtest_candidates(ctx: RunContext, store: Store, *, check_timeout: float = 60.0) -> dict[str, Any]:
    """Check every candidate (static, sandbox, lookahead) on real window data, score the
    ones that pass and make them active; archive the others with the reasons."""
    from blofin_pipeline.strategies import check_strategy

    candidates = registry.strategies_with_status(store, "candidate")
    if not candidates:
        logger.info("no candidates to check")
        return {"candidates": 0, "accepted": [], "rejected": {}}
    candles = load_window(ctx, store)
    check_frame = next(iter(candles.values()))
    accepted: list[StrategyRecord] = []
    rejected: dict[str, list[str]] = {}
    for record in candidates:
        report = check_strategy(record.code, check_frame, timeout=check_timeout, origin=record.ref)
        if report.accepted and report.name != record.name:
            report.accepted = False
            report.reasons.append(f"registry: the file declares name {report.name!r}, registered as {record.name!r}")
        if report.accepted:
            accepted.append(record)
        else:
            rejected[record.ref] = report.reasons
            registry.set_status(store, record.name, record.version, "archived",
                                "rejected by checks: " + "; ".join(report.reasons)[:1000])
            registry.add_knowledge(store, ctx.run_date, "rejected", record.ref,
                                   {"origin": record.origin, "category": record.category, "reasons": report.reasons,
                                    "stages": report.stages, "code_hash": record.code_hash})
            logger.warning("candidate %s rejected: %s", record.ref, "; ".join(report.reasons))
    universe = registry.portfolio_at_start(store, ctx.run_date) + candidates
    rows, failures = score_records(ctx, store, accepted, candles, "candidate", universe=universe)
    for record in accepted:
        if record.ref in failures:
            registry.set_status(store, record.name, record.version, "archived",
                                f"failed its backtest: {failures[record.ref]}"[:1000])
            rejected[record.ref] = [failures[record.ref]]
            continue
        registry.set_status(store, record.name, record.version, "active")
        mine = [r for r in rows if r["strategy"] == record.name and r["version"] == record.version]
        registry.add_knowledge(store, ctx.run_date, "accepted", record.ref, {
            "origin": record.origin, "parent": record.parent, "category": record.category,
            "score": float(np.mean([r["score"] for r in mine])),
            "sharpe": {r["symbol"]: r["sharpe"] for r in mine},
        })
    ok = [r.ref for r in accepted if r.ref not in failures]
    logger.info("candidates: %d checked, %d accepted (%s), %d rejected", len(candidates), len(ok),
                ", ".join(ok) or "-", len(rejected))
    return {"candidates": len(candidates), "accepted": ok, "rejected": rejected}
