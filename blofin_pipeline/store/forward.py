"""The forward record (``forward_returns``) and what it needs from the ranking and the backtests.

A date's rows are written as a whole: :func:`replace_forward_rows` deletes the date's old
rows and inserts the new ones in one transaction, so a re-run or a backfill rewrites exactly
that date.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from blofin_pipeline.store.connection import Store, load_sql

FORWARD_KEY = ("run_date", "strategy", "version", "symbol")


def replace_date_rows(store: Store, table: str, run_date: str, rows: Iterable[Mapping[str, Any]],
                      key: tuple[str, ...], delete_query: str) -> int:
    """In one transaction, delete the date's rows (named query ``delete_query``) and write ``rows``."""
    rows = list(rows)
    if any(r["run_date"] != run_date for r in rows):
        raise ValueError(f"rows for {table} on {run_date} include another run date")
    with store.transaction():
        store.execute(load_sql(delete_query), {"run_date": run_date})
        return store.upsert(table, rows, key=key)


def replace_forward_rows(store: Store, run_date: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """The date's forward record becomes ``rows``; returns how many were written."""
    return replace_date_rows(store, "forward_returns", run_date, rows, FORWARD_KEY, "forward_delete_date")


def forward_rows_until(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The whole forward record up to ``run_date`` of the versions tracked on that date, per
    strategy and symbol in date order."""
    return store.query_named("forward_rows_until", {"run_date": run_date})


def tracked_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """``{name, version, promoted_on}`` of the versions the latest ranking before the date kept."""
    return store.query_named("forward_tracked", {"run_date": run_date})


def kept_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """``{name, version, rank, promoted_on}`` of the versions the date's ranking kept, best first."""
    return store.query_named("forward_kept_on", {"run_date": run_date})


def backtest_at(store: Store, run_date: str, name: str, version: int) -> list[dict[str, Any]]:
    """``{symbol, sharpe, params}`` of a version's backtest rows on a run date."""
    return store.query_named("forward_backtest_at", {"run_date": run_date, "strategy": name, "version": version})


def latest_ranked_date(store: Store) -> str | None:
    """The latest run date with a strategy ranking, or None."""
    rows = store.query_named("forward_latest_date")
    return rows[0]["run_date"] if rows else None
