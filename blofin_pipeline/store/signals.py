"""The day's signals (``signals``): target positions of the kept strategies for the next bar.

Written per run date as a whole (:func:`replace_signals`), like the forward record.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from blofin_pipeline.store.connection import Store, load_sql

SIGNAL_KEY = ("run_date", "strategy", "version", "symbol")


def replace_signals(store: Store, run_date: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """The date's signals become ``rows``; returns how many were written."""
    rows = list(rows)
    if any(r["run_date"] != run_date for r in rows):
        raise ValueError(f"signals for {run_date} include another run date")
    with store.transaction():
        store.execute(load_sql("signals_delete_date"), {"run_date": run_date})
        return store.upsert("signals", rows, key=SIGNAL_KEY)


def signals_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The date's signal rows, best-ranked strategy first."""
    return store.query_named("signals_for_date", {"run_date": run_date})


def latest_signals_date(store: Store) -> str | None:
    rows = store.query_named("signals_latest_date")
    return rows[0]["run_date"] if rows else None
