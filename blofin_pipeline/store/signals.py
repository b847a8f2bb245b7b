"""The day's signals (``signals``): target positions of the kept strategies for the next bar.

Written per run date as a whole (:func:`replace_signals`), like the forward record.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from blofin_pipeline.store.connection import Store
from blofin_pipeline.store.forward import replace_date_rows

SIGNAL_KEY = ("run_date", "strategy", "version", "symbol")


def replace_signals(store: Store, run_date: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """The date's signals become ``rows``; returns how many were written."""
    return replace_date_rows(store, "signals", run_date, rows, SIGNAL_KEY, "signals_delete_date")


def signals_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The date's signal rows, best-ranked strategy first."""
    return store.query_named("signals_for_date", {"run_date": run_date})


def latest_signals_date(store: Store) -> str | None:
    rows = store.query_named("signals_latest_date")
    return rows[0]["run_date"] if rows else None
