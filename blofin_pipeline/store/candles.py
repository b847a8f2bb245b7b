"""Candles and the gaps found in them (tables ``candles`` and ``candle_gaps``).

Candle times are epoch milliseconds (bar open, UTC). Validation and the frame the
strategies see are ``market.candles``'; this module only moves rows.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

CANDLE_KEY = ("symbol", "timeframe", "ts")
GAP_KEY = ("symbol", "timeframe", "gap_start")


def last_candle_ms(store: Store, symbol: str, timeframe: str, end_ms: int) -> int | None:
    """Open time of the newest stored candle before ``end_ms``; None when there is none."""
    ts = store.scalar_named("candles_last_ts", {"symbol": symbol, "timeframe": timeframe, "end_ms": end_ms})
    return int(ts) if ts is not None else None


def candle_rows(store: Store, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Stored bars (ts, open, high, low, close, volume) in [start_ms, end_ms), oldest first."""
    return store.query_named("candles_range", {"symbol": symbol, "timeframe": timeframe,
                                               "start_ms": start_ms, "end_ms": end_ms})


def candle_sources(store: Store, timeframe: str, start_ms: int, end_ms: int) -> list[str]:
    """The data sources ('sample', 'blofin', 'csv') of the bars in [start_ms, end_ms), sorted."""
    rows = store.query_named("candles_sources", {"timeframe": timeframe, "start_ms": start_ms, "end_ms": end_ms})
    return sorted(r["source"] for r in rows)


def upsert_candles(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or overwrite bars keyed by (symbol, timeframe, ts)."""
    return store.upsert("candles", rows, key=CANDLE_KEY)


def upsert_gaps(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Record gaps keyed by (symbol, timeframe, gap_start)."""
    return store.upsert("candle_gaps", rows, key=GAP_KEY)


def gaps_found_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Gaps the run date's validation found (symbol, timeframe, gap_start, gap_end, missing_bars)."""
    return store.query_named("candles_gaps_on_date", {"run_date": run_date})


def candle_coverage(store: Store) -> list[dict[str, Any]]:
    """Bars per symbol, timeframe and source with the first and last open time."""
    return store.query_named("candles_coverage")
