"""Candles in the data database: store (validated upsert), load, sources, gaps.

A stored series (one symbol at one bar size) has one source: bars of another source
(the synthetic sample, BloFin, a CSV) are never appended to it. Gaps found while storing
are recorded open and closed when their bars arrive (a later import or ingest).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.validation import (
    Gap,
    ValidationReport,
    gaps_between,
    validate_candles,
)
from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.store.candles import (
    PAGE_ROWS,
    candle_columns,
    candle_count,
    close_gap,
    last_candle_ms,
    open_gaps,
    series_sources,
    stored_ts_pages,
    upsert_candles,
    upsert_gaps,
)
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)


def to_ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000_000)


def ms_to_iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()


def last_candle_ts(store: Store, symbol: str, timeframe: str, before: pd.Timestamp | None = None) -> int | None:
    """Open time (epoch ms) of the newest stored candle, optionally before a time."""
    end_ms = to_ms(before) if before is not None else 2**62
    return last_candle_ms(store, symbol, timeframe, end_ms)


def other_sources(store: Store, symbol: str, timeframe: str, source: str) -> list[dict]:
    """The stored series' sources other than ``source`` (source, n_bars, first_ts, last_ts)."""
    return [r for r in series_sources(store, symbol, timeframe) if r["source"] != source]


def describe_sources(rows: Iterable[dict]) -> str:
    """'9600 'sample' candles (2025-01-01T00:00 .. 2026-02-04T23:00)', joined by 'and'."""
    return " and ".join(f"{int(r['n_bars'])} {r['source']!r} candles ({ms_to_iso(r['first_ts'])[:16]} .. "
                        f"{ms_to_iso(r['last_ts'])[:16]})" for r in rows)


def refuse_mixed_sources(store: Store, symbol: str, timeframe: str, source: str, how: str) -> None:
    """DataValidationError when the stored series has bars of another source; ``how`` says
    how to proceed."""
    others = other_sources(store, symbol, timeframe, source)
    if others:
        raise DataValidationError(
            f"{symbol} {timeframe} already holds {describe_sources(others)}; a series never mixes sources, "
            f"so no {source!r} candles were added. {how}")


def store_candles(
    store: Store, frame_ms: pd.DataFrame, symbol: str, timeframe: str, *, source: str, run_date: str,
    previous_ts: int | None = None,
) -> ValidationReport:
    """Validate a batch indexed by epoch ms and upsert it with its gaps, then close the gaps
    its bars fill. Nothing is stored if validation fails (DataValidationError names the
    symbol and the first bad bar)."""
    clean, report = validate_candles(frame_ms, symbol, timeframe, previous_ts=previous_ts)
    now = utc_now()
    quote = clean["volume_quote"] if "volume_quote" in clean.columns else pd.Series(np.nan, index=clean.index)
    quote = [q if math.isfinite(q) else None for q in quote.to_numpy(dtype="float64").tolist()]
    # Plain Python values (validated: finite OHLCV; a missing quote volume is None), so the
    # store writes them as they are.
    rows = [
        {"symbol": symbol, "timeframe": timeframe, "ts": ts, "open": o, "high": h, "low": lo,
         "close": c, "volume": v, "volume_quote": q, "source": source, "ingested_at": now}
        for ts, o, h, lo, c, v, q in zip(
            np.asarray(clean.index, dtype="int64").tolist(),
            *(clean[col].to_numpy(dtype="float64").tolist() for col in ("open", "high", "low", "close", "volume")),
            quote)
    ]
    upsert_candles(store, rows, db_values=True)
    record_gaps(store, symbol, timeframe, report.gaps, run_date)
    if rows:
        close_filled_gaps(store, symbol, timeframe)
    return report


def load_candles(store: Store, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Stored candles with ``start <= ts < end`` as the standard frame (UTC DatetimeIndex)."""
    cols = candle_columns(store, symbol, timeframe, to_ms(start), to_ms(end))
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(cols["ts"], dtype="int64"), unit="ms", utc=True), name="ts")
    return pd.DataFrame({c: np.asarray(cols[c], dtype="float64") for c in ("open", "high", "low", "close", "volume")},
                        index=index)


# -- gaps --------------------------------------------------------------------------------
def record_gaps(store: Store, symbol: str, timeframe: str, gaps: Iterable[Gap], run_date: str) -> None:
    """Record gaps as open, found by ``run_date``."""
    upsert_gaps(store, [{"symbol": symbol, "timeframe": timeframe, "gap_start": g.start, "gap_end": g.end,
                         "missing_bars": g.missing_bars, "run_date": run_date} for g in gaps])


def stored_gaps(store: Store, symbol: str, timeframe: str, first_ms: int, last_ms: int,
                *, bounds_present: bool = True, page: int = PAGE_ROWS) -> list[Gap]:
    """Missing bars of the stored series between first_ms and last_ms (inclusive), read a
    page at a time. With ``bounds_present=False`` the bounds count as missing too."""
    step = timeframe_ms(timeframe)
    prev = first_ms if bounds_present else first_ms - step
    gaps: list[Gap] = []
    for ts in stored_ts_pages(store, symbol, timeframe, prev, last_ms, page):
        gaps += gaps_between(np.asarray([prev, *ts], dtype="int64"), step)
        prev = ts[-1]
    if not bounds_present and prev < last_ms:
        gaps += gaps_between(np.asarray([prev, last_ms + step], dtype="int64"), step)
    return gaps


def close_filled_gaps(store: Store, symbol: str, timeframe: str) -> int:
    """Close the open gaps whose bars are now stored; a partly filled gap is closed and what
    still misses recorded again. Returns how many gaps were closed."""
    closed = 0
    for gap in open_gaps(store, symbol, timeframe):
        start, end = int(gap["gap_start"]), int(gap["gap_end"])
        if candle_count(store, symbol, timeframe, start, end) == 0:
            continue
        still = stored_gaps(store, symbol, timeframe, start, end, bounds_present=False)
        close_gap(store, symbol, timeframe, start)
        record_gaps(store, symbol, timeframe, still, gap["run_date"])
        closed += 1
        logger.info("%s %s: gap %s .. %s (%d bars) closed%s", symbol, timeframe, ms_to_iso(start), ms_to_iso(end),
                    int(gap["missing_bars"]), f", {sum(g.missing_bars for g in still)} bars still missing"
                    if still else "")
    return closed
