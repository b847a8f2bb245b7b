"""Candles in the data database: store (validated upsert), load, gaps."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from blofin_pipeline.market.validation import (
    ValidationReport,
    ms_index_to_frame,
    validate_candles,
)
from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.store.candles import (
    candle_rows,
    last_candle_ms,
    upsert_candles,
    upsert_gaps,
)

logger = logging.getLogger(__name__)


def to_ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000_000)


def last_candle_ts(store: Store, symbol: str, timeframe: str, before: pd.Timestamp | None = None) -> int | None:
    """Open time (epoch ms) of the newest stored candle, optionally before a time."""
    end_ms = to_ms(before) if before is not None else 2**62
    return last_candle_ms(store, symbol, timeframe, end_ms)


def store_candles(
    store: Store, frame_ms: pd.DataFrame, symbol: str, timeframe: str, *, source: str, run_date: str,
    previous_ts: int | None = None, known_ts: np.ndarray | None = None,
) -> ValidationReport:
    """Validate a batch indexed by epoch ms and upsert it with its gaps. Nothing is stored
    if validation fails (DataValidationError names the symbol and the first bad bar)."""
    clean, report = validate_candles(frame_ms, symbol, timeframe, previous_ts=previous_ts, known_ts=known_ts)
    now = utc_now()
    quote = clean["volume_quote"] if "volume_quote" in clean.columns else pd.Series(np.nan, index=clean.index)
    rows = [
        {"symbol": symbol, "timeframe": timeframe, "ts": int(ts), "open": o, "high": h, "low": lo,
         "close": c, "volume": v, "volume_quote": q, "source": source, "ingested_at": now}
        for ts, o, h, lo, c, v, q in zip(
            clean.index, clean["open"], clean["high"], clean["low"], clean["close"], clean["volume"], quote)
    ]
    upsert_candles(store, rows)
    upsert_gaps(store, [{"symbol": symbol, "timeframe": timeframe, "gap_start": g.start, "gap_end": g.end,
                         "missing_bars": g.missing_bars, "run_date": run_date} for g in report.gaps])
    return report


def load_candles(store: Store, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Stored candles with ``start <= ts < end`` as the standard frame (UTC DatetimeIndex)."""
    rows = candle_rows(store, symbol, timeframe, to_ms(start), to_ms(end))
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    frame = frame.set_index("ts").astype("float64")
    return ms_index_to_frame(frame)


def stored_ts(store: Store, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> np.ndarray:
    """Open times (epoch ms) of the stored candles in [start_ms, end_ms)."""
    rows = candle_rows(store, symbol, timeframe, start_ms, end_ms)
    return np.asarray([r["ts"] for r in rows], dtype="int64")
