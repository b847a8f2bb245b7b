"""The strategy registry's rows (table ``strategies``) and the research trials behind the
deflated Sharpe ratio (table ``research_trials``).

Rows come back as stored (params, param_space as JSON text); the rules of registration
and the record type are ``strategies.registry``'s.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.store.connection import utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

LAST_DATE = "9999-12-31"  # "before" bound that admits every run date


def strategy_rows_with_status(store: Store, status: str) -> list[dict[str, Any]]:
    """Every version with the status, by name then version."""
    return store.query_named("registry_with_status", {"status": status})


def portfolio_rows_at_start(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The rule-file versions active as ``run_date`` started (see the query)."""
    return store.query_named("registry_portfolio_at_start", {"run_date": run_date})


def strategy_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first."""
    return store.query_named("registry_versions", {"name": name})


def strategy_version(store: Store, name: str, version: int) -> dict[str, Any] | None:
    """One version's row, or None."""
    rows = store.query_named("registry_version", {"name": name, "version": version})
    return rows[0] if rows else None


def strategy_with_hash(store: Store, name: str, code_hash: str) -> dict[str, Any] | None:
    """The version of ``name`` registered with this code hash, or None."""
    rows = store.query_named("registry_with_hash", {"name": name, "code_hash": code_hash})
    return rows[0] if rows else None


def strategy_index(store: Store) -> list[dict[str, Any]]:
    """Every version without its code: name, version, category, status, origin,
    code_hash, created_run_date."""
    return store.query_named("registry_index")


def insert_next_version(store: Store, row: Mapping[str, Any]) -> int:
    """Insert ``row`` (every column but version) as the next version of its name; returns
    that version. On a clash (a concurrent writer took the version) nothing is written:
    the caller reads the version back to find out."""
    with store.transaction():
        version = int(store.scalar_named("registry_max_version", {"name": row["name"]}) or 0) + 1
        store.upsert("strategies", [{**row, "version": version}], key=("name", "version"), update=())
    return version


def update_strategy_status(store: Store, name: str, version: int, status: str, reason: str | None) -> None:
    """Set a version's status; archiving records the reason and the first archival time,
    any other status clears both."""
    store.execute_named("registry_set_status", {"name": name, "version": version, "status": status,
                                                "reason": reason, "now": utc_now()})


def registered_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Versions registered by the run date (name, version, category, origin, status,
    parent, archive_reason)."""
    return store.query_named("registry_registered_on", {"run_date": run_date})


def category_status_counts(store: Store) -> list[dict[str, Any]]:
    """The registry's size by category and status (category, status, n)."""
    return store.query_named("registry_counts")


# -- research trials -------------------------------------------------------------------
def record_trials(store: Store, run_date: str, trials: Iterable[tuple[str, int]]) -> None:
    """Record how many configurations each item (``name@version``) tried on the run date."""
    store.upsert("research_trials", [{"run_date": run_date, "item": item, "n_trials": int(n)} for item, n in trials],
                 key=("run_date", "item"))


def total_trials(store: Store, *, before: str | None = None) -> int:
    """Configurations ever tried (by items first tried before a run date, if given): each
    item counted once, at its largest trial count."""
    return int(store.scalar_named("registry_total_trials", {"before": before or LAST_DATE}) or 0)


def items_tried_before(store: Store, run_date: str) -> set[str]:
    """Items first tried before the run date."""
    return {r["item"] for r in store.query_named("registry_items_tried_before", {"run_date": run_date})}
