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
