"""The step decorator: the step log (`pipeline_runs`) and the summary line around a step.

A step is a function ``fn(ctx, store, **kwargs) -> dict`` named like its DAG task. The
decorated function takes ``(ctx, **kwargs)``: it opens the data database, writes the
step's row (running, then success or failed with the error), runs the step and logs a
readable summary, as the specification's ``_log_step`` did. Errors are recorded, then
re-raised so Airflow marks the task failed. A step that stopped on purpose before doing
its work (its summary has `stopped`, e.g. the LLM budget) is logged `stopped`, not
`success`; one waiting for its Message Batch is logged `deferred`.
"""
from __future__ import annotations

import functools
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import LLMBatchPending, PipelineError
from blofin_pipeline.store import Store, open_store, to_json, utc_now
from blofin_pipeline.store.runs import scoring_step_rows, upsert_step_row

logger = logging.getLogger(__name__)

StepBody = Callable[..., dict[str, Any]]


def _log_row(store: Store, ctx: RunContext, label: str, status: str, started: str, **fields: Any) -> None:
    row = {"run_date": ctx.run_date, "step": label, "status": status, "started_at": started,
           "ended_at": None, "duration_s": None, "error": None, "summary": None, "run_id": ctx.run_id, **fields}
    upsert_step_row(store, row)


def step(fn: StepBody) -> Callable[..., dict[str, Any]]:
    """Wrap a step body with the step log; the label is the function's name, or
    ``name[chunk]`` for a chunk of a mapped step."""
    name = fn.__name__

    @functools.wraps(fn)
    def run(ctx: RunContext, **kwargs: Any) -> dict[str, Any]:
        n_chunks = kwargs.get("n_chunks", 1)
        label = name if n_chunks == 1 else f"{name}[{kwargs.get('chunk', 0)}]"
        check_parameters(ctx)
        started = utc_now()
        t0 = time.perf_counter()
        with open_store(ctx.db_url) as store:
            _log_row(store, ctx, label, "running", started)
            logger.info("step %s for %s started (data up to %s)", label, ctx.run_date, ctx.data_end.isoformat())
            try:
                summary = fn(ctx, store, **kwargs)
            except LLMBatchPending as pending:
                _log_row(store, ctx, label, "deferred", started, summary=to_json({"waiting_for": str(pending)}))
                raise
            except Exception as err:
                duration = time.perf_counter() - t0
                _log_row(store, ctx, label, "failed", started, ended_at=utc_now(), duration_s=duration,
                         error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}")
                logger.error("step %s failed after %.1f s: %s", label, duration, err)
                raise
            duration = time.perf_counter() - t0
            status = "stopped" if summary.get("stopped") else "success"
            _log_row(store, ctx, label, status, started, ended_at=utc_now(), duration_s=duration,
                     summary=to_json(summary))
        logger.info("step %s %s in %.1f s: %s", label, "succeeded" if status == "success" else "stopped", duration,
                    json.dumps(summary, default=str)[:2000])
        return summary

    run.body = fn  # type: ignore[attr-defined]  # the undecorated step, for tests with an open store
    return run


def check_parameters(ctx: RunContext) -> None:
    """The parameter checks that need domain code, before a step does anything (the config
    checked every other rule when it was built): a ConfigError fails the task at once."""
    if ctx.config.data_source == "sample":
        from blofin_pipeline.market.sample import parse_edge

        parse_edge(ctx.config.sample_edge)


def require_scores(store: Store, run_date: str) -> None:
    """Ranking on stale scores would be a lie: the day's scoring must have succeeded."""
    rows = scoring_step_rows(store, run_date)
    bad = [r["step"] for r in rows if r["status"] != "success"]
    if not rows or bad:
        raise PipelineError(f"score_strategies did not succeed for {run_date} ({', '.join(bad) or 'not run'}): "
                            "refusing to rank or report on stale scores")
