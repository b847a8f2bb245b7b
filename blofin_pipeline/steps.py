"""The DAG's steps as plain functions: one per task id, each taking a RunContext.

Every step runs inside :func:`run_step`, which writes the step log (`pipeline_runs`:
start, end, status, duration, error) as the specification's ``_log_step`` did, and logs
a readable summary line into the task log. Errors are recorded, then re-raised so
Airflow marks the task failed and retries it.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.store import Store, open_store, to_json, utc_now

logger = logging.getLogger(__name__)


def run_step(ctx: RunContext, step: str, fn: Callable[[Store], dict[str, Any]]) -> dict[str, Any]:
    """Run one step against the data database with the step log around it."""
    started = utc_now()
    t0 = time.perf_counter()
    with open_store(ctx.db_url) as store:
        store.upsert("pipeline_runs", [{
            "run_date": ctx.run_date, "step": step, "status": "running", "started_at": started,
            "ended_at": None, "duration_s": None, "error": None, "summary": None,
        }], key=("run_date", "step"))
        logger.info("step %s for %s started (data up to %s)", step, ctx.run_date, ctx.data_end.isoformat())
        try:
            summary = fn(store)
        except Exception as err:
            duration = time.perf_counter() - t0
            store.upsert("pipeline_runs", [{
                "run_date": ctx.run_date, "step": step, "status": "failed", "started_at": started,
                "ended_at": utc_now(), "duration_s": duration,
                "error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}", "summary": None,
            }], key=("run_date", "step"))
            logger.error("step %s failed after %.1f s: %s", step, duration, err)
            raise
        duration = time.perf_counter() - t0
        store.upsert("pipeline_runs", [{
            "run_date": ctx.run_date, "step": step, "status": "success", "started_at": started,
            "ended_at": utc_now(), "duration_s": duration, "error": None, "summary": to_json(summary),
        }], key=("run_date", "step"))
    logger.info("step %s succeeded in %.1f s: %s", step, duration, json.dumps(summary, default=str)[:2000])
    return summary


def ingest_candles(ctx: RunContext, client_factory: Callable[[], object] | None = None) -> dict[str, Any]:
    from blofin_pipeline.market.ingest import ingest_candles as _ingest, make_source

    source = make_source(ctx, client_factory)
    return run_step(ctx, "ingest_candles", lambda store: _ingest(ctx, store, source))


def score_strategies(ctx: RunContext, *, chunk: int = 0, n_chunks: int = 1) -> dict[str, Any]:
    from blofin_pipeline.research.scoring import score_strategies as _score

    step = "score_strategies" if n_chunks == 1 else f"score_strategies[{chunk}]"
    return run_step(ctx, step, lambda store: _score(ctx, store, chunk=chunk, n_chunks=n_chunks))


def backtest_candidates(ctx: RunContext) -> dict[str, Any]:
    from blofin_pipeline.research.scoring import backtest_candidates as _candidates

    return run_step(ctx, "backtest_candidates", lambda store: _candidates(ctx, store))


def design_strategies(ctx: RunContext, *, llm: Any = None) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "design_strategies", lambda store: loop.design_strategies(ctx, store, llm=llm))


def tune_strategies(ctx: RunContext, *, llm: Any = None) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "tune_strategies", lambda store: loop.tune_strategies(ctx, store, llm=llm))


def train_ml_models(ctx: RunContext) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "train_ml_models", lambda store: loop.train_ml_models(ctx, store))


def rank_and_update(ctx: RunContext) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "rank_and_update", lambda store: loop.rank_and_update(ctx, store))


def generate_report(ctx: RunContext) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "generate_report", lambda store: loop.generate_report(ctx, store))


def ai_review(ctx: RunContext, *, llm: Any = None) -> dict[str, Any]:
    from blofin_pipeline.research import loop

    return run_step(ctx, "ai_review", lambda store: loop.ai_review(ctx, store, llm=llm))


def run_all(ctx: RunContext, *, llm: Any = None, n_chunks: int = 1) -> dict[str, Any]:
    """Every step in DAG order, in this process (tests and the CLI; Airflow runs the DAG).

    As in the DAG, a failing research branch does not stop the steps after it.
    """
    out: dict[str, Any] = {"ingest_candles": ingest_candles(ctx)}
    out["score_strategies"] = [score_strategies(ctx, chunk=i, n_chunks=n_chunks) for i in range(n_chunks)]
    for name, fn in (("design_strategies", lambda: design_strategies(ctx, llm=llm)),
                     ("tune_strategies", lambda: tune_strategies(ctx, llm=llm)),
                     ("train_ml_models", lambda: train_ml_models(ctx))):
        try:
            out[name] = fn()
        except Exception as err:  # recorded in pipeline_runs by run_step; the run goes on
            out[name] = {"error": f"{type(err).__name__}: {err}"}
    out["backtest_candidates"] = backtest_candidates(ctx)
    out["rank_and_update"] = rank_and_update(ctx)
    out["generate_report"] = generate_report(ctx)
    out["ai_review"] = ai_review(ctx, llm=llm)
    return out
