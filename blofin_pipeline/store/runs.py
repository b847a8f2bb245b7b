"""The step log (table ``pipeline_runs``): one row per step and run date."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store


def upsert_step_row(store: Store, row: Mapping[str, Any]) -> None:
    """Write a step's row (running, then success or failed), keyed by (run_date, step)."""
    store.upsert("pipeline_runs", [row], key=("run_date", "step"))


def scoring_step_rows(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's ``score_strategies`` rows (step, status), one per chunk."""
    return store.query_named("runs_scoring_steps", {"run_date": run_date})


def step_rows_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's step log (step, status, started_at, ended_at, duration_s, error, run_id)."""
    return store.query_named("runs_on_date", {"run_date": run_date})


def delete_scoring_steps(store: Store, run_date: str) -> int:
    """Withdraw the run date's ``score_strategies`` rows (a new plan may have fewer chunks)."""
    return store.execute_named("runs_delete_scoring_steps", {"run_date": run_date})
