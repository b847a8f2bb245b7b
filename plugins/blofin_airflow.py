"""Airflow adapter for the `blofin_daily` DAG: turns a task's context into a RunContext.

It is the only place that reads Airflow things (params, logical date, data interval,
connections) and hands plain values to the step functions of `blofin_pipeline.steps`. Nothing runs at import
time: the DAG file imports this module while being parsed.

Connections:
- `blofin_db`: the data database. conn type `sqlite` (host = the file path) or
  `postgres`. Missing: the documented default file `$BLOFIN_WORKSPACE/data/blofin_monitor.db`.
- `blofin_api` (optional): its host is the BloFin REST root, so tests point it at a
  local server. Missing: the public endpoint.
- `anthropic_default` (optional): see `blofin_llm_hook`.

The LLM research tasks (`blofin_llm_operator.LLMStepOperator`) come through
`run_llm_step` / `resume_llm_step`: in batch mode the step's requests go out as a Message
Batch and the task defers to the Anthropic provider's batch trigger until it ends.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from blofin_pipeline.exceptions import ConfigError

if TYPE_CHECKING:
    from blofin_pipeline.config import RunContext

logger = logging.getLogger(__name__)

DB_CONN_ID = "blofin_db"
EXCHANGE_CONN_ID = "blofin_api"
LLM_CONN_ID = "anthropic_default"


def _connection(conn_id: str):
    """The Connection, or None when it is not defined (any other error propagates)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def workspace() -> Path:
    from blofin_pipeline.config import default_workspace

    return default_workspace()


def db_url() -> str:
    """SQLAlchemy-style URL of the data database from the `blofin_db` connection."""
    from blofin_pipeline.config import default_db_url

    conn = _connection(DB_CONN_ID)
    if conn is None:
        url = default_db_url(workspace())
        logger.info("no %s connection: using the default data database %s", DB_CONN_ID, url)
        return url
    if conn.conn_type == "sqlite":
        path = conn.host or ""
        if not path:
            raise ConfigError(f"connection {DB_CONN_ID!r}: sqlite needs the database file path in host")
        return f"sqlite:///{Path(path).expanduser().resolve()}"
    if conn.conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        netloc = f"{auth}@" if auth else ""
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql://{netloc}{conn.host or 'localhost'}{port}/{conn.schema or 'postgres'}"
    raise ConfigError(f"connection {DB_CONN_ID!r}: conn type {conn.conn_type!r} is not sqlite or postgres")


def blofin_client_factory():
    """A BlofinClient factory bound to the `blofin_api` connection (or the public root)."""
    from blofin_pipeline.market.blofin_client import BlofinClient

    conn = _connection(EXCHANGE_CONN_ID)
    kwargs: dict[str, Any] = {}
    if conn is not None:
        if conn.host:
            base = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
            if conn.port:
                base = f"{base}:{conn.port}"
            kwargs["base_url"] = base
        extra = conn.extra_dejson or {}
        for key in ("timeout", "max_requests_per_minute", "max_retries", "backoff_base", "backoff_max"):
            if key in extra:
                kwargs[key] = extra[key]
    return lambda: BlofinClient(**kwargs)


def run_context(context: dict[str, Any]) -> RunContext:
    """RunContext from an Airflow task context: date, data end, params, database."""
    from blofin_pipeline.config import PipelineConfig, RunContext

    dag_run = context.get("dag_run")
    # A manual trigger may have no logical date: fall back to when the run was asked for.
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after")
    data_end = context.get("data_interval_end") or logical
    config = PipelineConfig.from_params(dict(context.get("params") or {}))
    triggered = getattr(dag_run, "run_after", None) or getattr(dag_run, "queued_at", None) or logical
    return RunContext.create(logical_date=logical, data_end=data_end, config=config, db_url=db_url(),
                             workspace=workspace(), run_id=getattr(dag_run, "run_id", None) or context.get("run_id"),
                             triggered_at=triggered)


def llm_available() -> bool:
    return _connection(LLM_CONN_ID) is not None


def run(step_fn: Callable[..., dict[str, Any]], *, llm: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Call a step of `blofin_pipeline.steps` with this task's RunContext.

    ``llm=True`` hands the step the LLM connection (or None in offline mode); the ingest step
    gets the exchange client factory when the run reads from BloFin.
    """
    from airflow.sdk import get_current_context

    with _config_errors_fail_at_once():
        ctx = run_context(get_current_context())
        if ctx.config.llm_mode == "online" and not llm_available():
            # checked by every task, not only the LLM ones: the run fails in its first task
            raise ConfigError(f"llm_mode=online but connection {LLM_CONN_ID!r} is not defined")
        if llm:
            kwargs["llm"] = _llm_for(ctx, step_fn.__name__)
        if step_fn.__name__ == "ingest_candles" and ctx.config.data_source == "blofin":
            kwargs["client_factory"] = blofin_client_factory()
        return step_fn(ctx, **kwargs)


@contextmanager
def _config_errors_fail_at_once() -> Iterator[None]:
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except ConfigError as err:
        # A configuration error fails the same way on every try: fail now, no retries.
        raise AirflowFailException(f"invalid run configuration: {err}") from err


def run_llm_step(operator: Any, context: dict[str, Any], step_fn: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """An LLM step (`blofin_llm_operator.LLMStepOperator`): run it; in batch mode submit the
    requests it collected and defer to the provider's batch trigger."""
    from blofin_pipeline.exceptions import LLMBatchPending

    with _config_errors_fail_at_once():
        ctx = run_context(context)
        llm = _llm_for(ctx, step_fn.__name__)
        try:
            return step_fn(ctx, llm=llm)
        except LLMBatchPending as pending:
            _defer_for_batch(operator, ctx, llm, pending)
            raise  # pragma: no cover - defer() raises TaskDeferred


def _defer_for_batch(operator: Any, ctx: RunContext, llm: Any, pending: Any) -> None:
    from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

    from blofin_pipeline.steps.llm_day import submit_batch

    batch_id = submit_batch(ctx, llm, pending)
    wait = llm.settings.batch
    logger.info("%s: waiting for Message Batch %s in the triggerer (poll every %g s, at most %g s)",
                pending.step, batch_id, wait.poll_s, wait.timeout_s)
    operator.defer(
        trigger=AnthropicBatchTrigger(conn_id=LLM_CONN_ID, batch_id=batch_id, poll_interval=wait.poll_s,
                                      end_time=time.time() + wait.timeout_s),
        method_name="execute_complete",
        # past the trigger's own end, so its clean "timeout" event wins over a task timeout
        timeout=timedelta(seconds=wait.timeout_s + wait.poll_s + 60))


def resume_llm_step(operator: Any, context: dict[str, Any], step_fn: Callable[..., dict[str, Any]],
                    event: dict[str, Any] | None) -> dict[str, Any]:
    """After the batch trigger fired: the batch's answers (or, when it did not end in time or
    could not be polled, none: the batch is canceled and the step calls the API directly)."""
    from blofin_pipeline.llm.batch import BatchAnswers, cancelled

    with _config_errors_fail_at_once():
        ctx = run_context(context)
        llm = _llm_for(ctx, step_fn.__name__)
        if llm is None:
            raise ConfigError(f"{step_fn.__name__}: the LLM connection {LLM_CONN_ID!r} is gone while its batch ran")
        event = event or {}
        batch_id = str(event.get("batch_id") or "")
        if event.get("status") == "success":
            answers = BatchAnswers(batch_id, llm.batch_results(batch_id))
        else:
            answers = cancelled(llm, batch_id, f"batch {batch_id} {event.get('status') or 'no event'}: "
                                               f"{event.get('message') or 'no message'}")
        return step_fn(ctx, llm=llm, batch=answers)


def _llm_for(ctx: RunContext, step: str):
    """The LLM connection (the hook) for a step, or None for offline mode (said in the log).

    The step builds its structured caller from it: the hook transports, the library's
    policy validates, budgets and records usage in the step's data database."""
    mode = ctx.config.llm_mode
    if mode == "offline":
        logger.info("%s: llm_mode=offline: deterministic, non-LLM mode", step)
        return None
    if not llm_available():
        if mode == "online":
            raise ConfigError(f"{step}: llm_mode=online but connection {LLM_CONN_ID!r} is not defined")
        logger.info("%s: no %s connection: offline mode (deterministic, non-LLM)", step, LLM_CONN_ID)
        return None
    from blofin_llm_hook import BlofinLLMHook

    return BlofinLLMHook(LLM_CONN_ID)

