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
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise a candle batch indexed by bar open time (epoch ms, int).

    ``previous_ts`` is the last bar already stored, so a gap between it and this batch
    is found too. Returns the clean batch (sorted, unique) and the report.
    """
    report = ValidationReport(symbol, timeframe, rows_in=len(frame))
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{symbol} {timeframe}: candles lack columns {missing}")
    if len(frame) == 0:
        return frame, report
    step = timeframe_ms(timeframe)
    _check_values(frame, symbol, timeframe)

    frame = _sorted_unique(frame, symbol, timeframe, report)
    report.gaps = _gaps(np.asarray(frame.index, dtype="int64"), step, previous_ts)
    report.rows_out = len(frame)
    if report.gaps:
        logger.warning("%s %s: %d gaps, %d missing bars (recorded, not filled)",
                       symbol, timeframe, len(report.gaps), report.missing_bars)
    return frame, report


def problem_masks(ts: np.ndarray, values: np.ndarray, timeframe: str) -> list[tuple[str, np.ndarray]]:
    """What is wrong with each row of a batch: (problem, row mask) per rule, in the order
    the rules are checked. ``values`` are the ``CANDLE_COLUMNS`` as float64, ``ts`` epoch ms;
    a row with non-finite values is not checked by the later rules."""
    step = timeframe_ms(timeframe)
    finite = np.isfinite(values).all(axis=1)
    o, h, low, c, v = np.where(finite[:, None], values, 1.0).T
    return [
        ("NaN or infinite values", ~finite),
        ("non-positive prices", (np.where(finite[:, None], values[:, :4], 1.0) <= 0).any(axis=1)),
        ("OHLC inconsistent (need low <= open, close <= high)",
         (low > np.minimum(o, c)) | (h < np.maximum(o, c)) | (low > h)),
        ("negative volume", v < 0),
        (f"timestamps not on the {timeframe} bar grid", ts % step != 0),
    ]


def _check_values(frame: pd.DataFrame, symbol: str, timeframe: str) -> None:
    """Reject a batch with non-finite, non-positive or inconsistent values, or off-grid times."""
    ts = np.asarray(frame.index, dtype="int64")
    values = frame[list(CANDLE_COLUMNS)].to_numpy(dtype="float64")
    for problem, bad in problem_masks(ts, values, timeframe):
        if bad.any():
            raise DataValidationError(f"{symbol} {timeframe}: {problem} in {_where(frame, bad)}")


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


def _gaps(ts: np.ndarray, step: int, previous_ts: int | None) -> list[Gap]:
    """Missing bars in the batch and between it and the last stored bar."""
    if previous_ts is not None:
        ts = np.unique(np.concatenate([np.asarray([previous_ts], dtype="int64"), ts]))
    return gaps_between(ts, step)


def gaps_between(ts: np.ndarray, step: int) -> list[Gap]:
    """The missing bars between consecutive bar times (sorted, unique, epoch ms)."""
    ts = np.asarray(ts, dtype="int64")
    jumps = np.flatnonzero(np.diff(ts) > step)
    return [
        Gap(int(ts[i] + step), int(ts[i + 1] - step), int((ts[i + 1] - ts[i]) // step - 1))
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
