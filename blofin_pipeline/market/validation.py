"""Candle validation: what gets stored is checked, and what is wrong is said.

Hard errors (the batch is refused, nothing is stored, the message names the symbol and
the first bad bar): NaN or infinite values, non-positive prices, OHLC inconsistency
(low <= min(open, close), max(open, close) <= high), negative volume, timestamps off the
bar grid, conflicting duplicates (same ts, different values).

Repaired and reported (nothing invented): exact duplicates are dropped, out-of-order
rows are sorted. Gaps (missing bars) are found and reported, never filled.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = (*PRICE_COLUMNS, "volume")


@dataclass(frozen=True)
class Gap:
    """Missing bars ``start``..``end`` (inclusive bar open times, epoch ms)."""

    start: int
    end: int
    missing_bars: int


@dataclass
class ValidationReport:
    symbol: str
    timeframe: str
    rows_in: int = 0
    rows_out: int = 0
    duplicates_dropped: int = 0
    out_of_order: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)

    def summary(self) -> str:
        return (
            f"{self.symbol} {self.timeframe}: {self.rows_out} valid rows of {self.rows_in}, "
            f"{self.duplicates_dropped} duplicates dropped, {self.out_of_order} out of order, "
            f"{len(self.gaps)} gaps ({self.missing_bars} missing bars)"
        )


def _where(frame: pd.DataFrame, mask: np.ndarray) -> str:
    first = frame.index[np.flatnonzero(mask)[0]]
    return f"{int(mask.sum())} rows, first at {pd.Timestamp(first, unit='ms', tz='UTC').isoformat()}"


def validate_candles(
    frame: pd.DataFrame,
    symbol: str,
    timeframe: str,
    *,
    previous_ts: int | None = None,
    known_ts: np.ndarray | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise a candle batch indexed by bar open time (epoch ms, int).

    ``previous_ts`` is the last bar already stored, so a gap between it and this batch
    is found too; ``known_ts`` are other stored bars in the batch's span (a CSV import
    may land among stored candles), so only bars missing from both count as gaps. Returns the clean batch (sorted, unique) and the report.
    """
    report = ValidationReport(symbol, timeframe, rows_in=len(frame))
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{symbol} {timeframe}: candles lack columns {missing}")
    if len(frame) == 0:
        return frame, report
    step = timeframe_ms(timeframe)
    _check_values(frame, symbol, timeframe, step)

    frame = _sorted_unique(frame, symbol, timeframe, report)
    report.gaps = _gaps(np.asarray(frame.index, dtype="int64"), step, previous_ts, known_ts)
    report.rows_out = len(frame)
    if report.gaps:
        logger.warning("%s %s: %d gaps, %d missing bars (recorded, not filled)",
                       symbol, timeframe, len(report.gaps), report.missing_bars)
    return frame, report


def _check_values(frame: pd.DataFrame, symbol: str, timeframe: str, step: int) -> None:
    """Reject a batch with non-finite, non-positive or inconsistent values, or off-grid times."""
    ts = np.asarray(frame.index, dtype="int64")
    values = frame[list(CANDLE_COLUMNS)].to_numpy(dtype="float64")

    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataValidationError(f"{symbol} {timeframe}: NaN or infinite values in {_where(frame, bad)}")
    o, h, low, c, v = values.T
    bad = (values[:, :4] <= 0).any(axis=1)
    if bad.any():
        raise DataValidationError(f"{symbol} {timeframe}: non-positive prices in {_where(frame, bad)}")
    bad = (low > np.minimum(o, c)) | (h < np.maximum(o, c)) | (low > h)
    if bad.any():
        raise DataValidationError(
            f"{symbol} {timeframe}: OHLC inconsistent (need low <= open, close <= high) in {_where(frame, bad)}"
        )
    bad = v < 0
    if bad.any():
        raise DataValidationError(f"{symbol} {timeframe}: negative volume in {_where(frame, bad)}")
    bad = ts % step != 0
    if bad.any():
        raise DataValidationError(
            f"{symbol} {timeframe}: timestamps not on the {timeframe} bar grid in {_where(frame, bad)}"
        )


def _sorted_unique(frame: pd.DataFrame, symbol: str, timeframe: str, report: ValidationReport) -> pd.DataFrame:
    """Sort by time; drop exact duplicates (counted), refuse conflicting ones."""
    report.out_of_order = int((np.diff(np.asarray(frame.index, dtype="int64")) < 0).sum())
    frame = frame.sort_index(kind="stable")
    dup = frame.index.duplicated(keep="first")
    if dup.any():
        dups = frame[frame.index.duplicated(keep=False)]
        conflicting = dups.groupby(level=0)[list(CANDLE_COLUMNS)].nunique().gt(1).any(axis=1)
        if conflicting.any():
            first = int(conflicting[conflicting].index[0])
            raise DataValidationError(
                f"{symbol} {timeframe}: conflicting duplicate candles (same time, different values) at "
                f"{pd.Timestamp(first, unit='ms', tz='UTC').isoformat()}"
            )
        report.duplicates_dropped = int(dup.sum())
        frame = frame[~dup]

    return frame


def _gaps(ts: np.ndarray, step: int, previous_ts: int | None, known_ts: np.ndarray | None) -> list[Gap]:
    """Missing bars between the batch, the last stored bar and other stored bars."""
    extra = [np.asarray([previous_ts], dtype="int64")] if previous_ts is not None else []
    if known_ts is not None:
        extra.append(np.asarray(known_ts, dtype="int64"))
    ts_all = np.unique(np.concatenate([ts, *extra])) if extra else ts
    jumps = np.flatnonzero(np.diff(ts_all) > step)
    return [
        Gap(int(ts_all[i] + step), int(ts_all[i + 1] - step), int((ts_all[i + 1] - ts_all[i]) // step - 1))
        for i in jumps
    ]


def frame_to_ms_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Candles with a UTC DatetimeIndex -> the same rows indexed by epoch ms (int64)."""
    out = frame.copy()
    idx = pd.DatetimeIndex(frame.index)
    if idx.tz is None:
        raise DataValidationError("candle timestamps must be timezone-aware (UTC)")
    out.index = pd.Index((idx.tz_convert("UTC").as_unit("ms").asi8), name="ts")
    return out


def ms_index_to_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`frame_to_ms_index`: epoch ms index -> UTC DatetimeIndex named ts."""
    out = frame.copy()
    out.index = pd.DatetimeIndex(pd.to_datetime(np.asarray(frame.index, dtype="int64"), unit="ms", utc=True), name="ts")
    return out
