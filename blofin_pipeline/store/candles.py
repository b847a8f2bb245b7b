"""Candles and the gaps found in them (tables ``candles`` and ``candle_gaps``), and the
staging table of a CSV import (``candle_import``, a TEMP table of the connection).

Candle times are epoch milliseconds (bar open, UTC). Validation and the frame the
strategies see are ``market.candles``'; this module only moves rows.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.store.connection import utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

CANDLE_KEY = ("symbol", "timeframe", "ts")
GAP_KEY = ("symbol", "timeframe", "gap_start")
PAGE_ROWS = 50_000  # rows per page read and per write transaction of a large move


def last_candle_ms(store: Store, symbol: str, timeframe: str, end_ms: int) -> int | None:
    """Open time of the newest stored candle before ``end_ms``; None when there is none."""
    ts = store.scalar_named("candles_last_ts", {"symbol": symbol, "timeframe": timeframe, "end_ms": end_ms})
    return int(ts) if ts is not None else None


def candle_columns(store: Store, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> dict[str, list[Any]]:
    """Stored bars in [start_ms, end_ms), oldest first, as {column: values} (ts, open, high,
    low, close, volume): no dict per row, the cheap read of a long series."""
    return store.query_columns("candles_range", {"symbol": symbol, "timeframe": timeframe,
                                                 "start_ms": start_ms, "end_ms": end_ms})


def candle_sources(store: Store, timeframe: str, start_ms: int, end_ms: int) -> list[str]:
    """The data sources ('sample', 'blofin', 'csv') of the bars in [start_ms, end_ms), sorted."""
    rows = store.query_named("candles_sources", {"timeframe": timeframe, "start_ms": start_ms, "end_ms": end_ms})
    return sorted(r["source"] for r in rows)


def candle_count(store: Store, symbol: str, timeframe: str, first_ms: int, last_ms: int) -> int:
    """Stored bars with first_ms <= ts <= last_ms."""
    return int(store.scalar_named("candles_count_between", {"symbol": symbol, "timeframe": timeframe,
                                                             "first_ts": first_ms, "last_ts": last_ms}) or 0)


def stored_ts_pages(store: Store, symbol: str, timeframe: str, after_ms: int, last_ms: int,
                    page: int = PAGE_ROWS) -> Iterator[list[int]]:
    """Open times of the stored bars in (after_ms, last_ms], oldest first, a page at a time."""
    while True:
        rows = store.query_named("candles_ts_page", {"symbol": symbol, "timeframe": timeframe,
                                                     "after_ts": after_ms, "last_ts": last_ms, "limit": page})
        if not rows:
            return
        ts = [int(r["ts"]) for r in rows]
        yield ts
        after_ms = ts[-1]


def upsert_candles(store: Store, rows: Iterable[Mapping[str, Any]], *, overwrite: bool = True,
                   db_values: bool = False) -> int:
    """Insert bars keyed by (symbol, timeframe, ts); stored ones are overwritten, or with
    ``overwrite=False`` kept. ``db_values``: see `Store.upsert`."""
    return store.upsert("candles", rows, key=CANDLE_KEY, update=None if overwrite else (), db_values=db_values)


def series_sources(store: Store, symbol: str, timeframe: str) -> list[dict[str, Any]]:
    """The sources of a symbol's stored series: source, n_bars, first_ts, last_ts."""
    return store.query_named("candles_series_sources", {"symbol": symbol, "timeframe": timeframe})


def window_sources(store: Store, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[str]:
    """The sources of a symbol's stored bars in [start_ms, end_ms), sorted."""
    rows = store.query_named("candles_window_sources", {"symbol": symbol, "timeframe": timeframe,
                                                        "start_ms": start_ms, "end_ms": end_ms})
    return [r["source"] for r in rows]


def delete_source(store: Store, symbol: str, timeframe: str, source: str, page: int = PAGE_ROWS) -> int:
    """Delete a symbol's bars of one source, ``page`` bars per write transaction."""
    deleted = 0
    while True:
        with store.transaction():
            n = store.execute_named("candles_delete_source_batch", {"symbol": symbol, "timeframe": timeframe,
                                                                    "source": source, "limit": page})
        if n <= 0:
            return deleted
        deleted += n


def candle_coverage(store: Store, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Bars in [start_ms, end_ms) per symbol, timeframe and source with the first and last open time."""
    return store.query_named("candles_coverage", {"start_ms": start_ms, "end_ms": end_ms})


# -- gaps --------------------------------------------------------------------------------
def upsert_gaps(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Record open gaps keyed by (symbol, timeframe, gap_start)."""
    return store.upsert("candle_gaps", [{**row, "closed_at": None} for row in rows], key=GAP_KEY)


def gaps_found_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Gaps the run date's validation found (symbol, timeframe, gap_start, gap_end,
    missing_bars, closed_at)."""
    return store.query_named("candles_gaps_on_date", {"run_date": run_date})


def open_gaps(store: Store, symbol: str, timeframe: str) -> list[dict[str, Any]]:
    """Gaps not closed yet (gap_start, gap_end, missing_bars, run_date, fetch_attempts)."""
    return store.query_named("candles_open_gaps", {"symbol": symbol, "timeframe": timeframe})


def close_gap(store: Store, symbol: str, timeframe: str, gap_start: int) -> None:
    """Mark a gap closed now."""
    store.execute_named("candles_close_gap", {"symbol": symbol, "timeframe": timeframe, "gap_start": gap_start,
                                              "closed_at": utc_now()})


def count_gap_fetch(store: Store, symbol: str, timeframe: str, gap_start: int) -> None:
    """Count one more attempt to fetch a gap's bars."""
    store.execute_named("candles_gap_fetched", {"symbol": symbol, "timeframe": timeframe, "gap_start": gap_start})


# -- the staging table of a CSV import ----------------------------------------------------
def create_import_stage(store: Store) -> None:
    """A fresh, empty ``candle_import`` TEMP table on this connection."""
    store.execute_named("candles_import_drop")
    store.execute_named("candles_import_create")


def drop_import_stage(store: Store) -> None:
    store.execute_named("candles_import_drop")


def stage_rows(store: Store, rows: Iterable[Mapping[str, Any]]) -> None:
    """Stage rows (ts, line, open, high, low, close, volume); the data database's write lock
    is not taken (TEMP table)."""
    store.execute_many_named("candles_import_stage", rows, lock=False)


def import_summary(store: Store) -> dict[str, Any]:
    """The staged bars: n_bars, duplicates, conflicts, first_ts, last_ts."""
    return store.query_named("candles_import_summary")[0]


def import_conflicts(store: Store, limit: int) -> list[dict[str, Any]]:
    """The first staged times repeated with different values: ts, line, conflict_line."""
    return store.query_named("candles_import_conflicts", {"limit": limit})


def import_compare(store: Store, symbol: str, timeframe: str) -> dict[str, Any]:
    """Staged bars already stored: stored, identical, first_differing_ts."""
    return store.query_named("candles_import_compare", {"symbol": symbol, "timeframe": timeframe})[0]


def import_difference(store: Store, symbol: str, timeframe: str, ts: int) -> dict[str, Any]:
    """One staged bar and the stored one: line, the file's values and stored_<column>."""
    return store.query_named("candles_import_difference", {"symbol": symbol, "timeframe": timeframe, "ts": ts})[0]


def write_import(store: Store, symbol: str, timeframe: str, source: str, *, overwrite: bool,
                 page: int = PAGE_ROWS) -> int:
    """Write the staged bars to the series, ``page`` bars per write transaction: the new
    ones, and with ``overwrite`` those stored with other values. Returns the bars written."""
    after, written, now = -(2**62), 0, utc_now()
    while True:
        until = store.scalar_named("candles_import_page_end", {"after_ts": after, "limit": page})
        if until is None:
            return written
        with store.transaction():
            written += store.execute_named("candles_import_write", {
                "symbol": symbol, "timeframe": timeframe, "source": source, "ingested_at": now,
                "after_ts": after, "until_ts": int(until), "overwrite": int(overwrite)})
        after = int(until)
