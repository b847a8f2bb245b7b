"""`import-candles`: load candles from CSV through the same checks as the exchange's.

Any file size in flat memory and short write transactions: the file is read a chunk at a
time (`csv_read`) into the connection's TEMP staging table (which never takes the data
database's write lock), checked as a whole there, then written in pages of
``store.candles.PAGE_ROWS`` bars, each its own transaction, so other writers (the
pipeline's steps) wait at most one page.

Nothing is written unless the whole file is fine: every problem is listed with its line
(the first ``MAX_PROBLEMS``); bars repeated with different values are refused; bars that
would overwrite stored candles with other values are refused unless ``replace`` (and
counted: identical stored bars are fine and skipped); a series already holding bars of
another source is refused unless ``replace``, which deletes that series first (a series
never mixes sources). Gaps in the file's span are recorded; gaps its bars fill, closed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.candles import (
    close_filled_gaps,
    describe_sources,
    ms_to_iso,
    other_sources,
    record_gaps,
    stored_gaps,
)
from blofin_pipeline.market.csv_read import CHUNK_ROWS, read_chunks, read_header
from blofin_pipeline.market.validation import CANDLE_COLUMNS, Gap
from blofin_pipeline.store import Store
from blofin_pipeline.store.candles import (
    PAGE_ROWS,
    create_import_stage,
    delete_source,
    drop_import_stage,
    import_compare,
    import_conflicts,
    import_difference,
    import_summary,
    stage_rows,
    write_import,
)
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)

SOURCE = "csv"
MAX_PROBLEMS = 20  # problems listed when a file is refused (all are counted)


@dataclass
class ImportReport:
    symbol: str
    timeframe: str
    rows_in: int = 0              # data lines read
    rows_out: int = 0             # distinct valid bars in the file
    duplicates_dropped: int = 0   # exact repeats of a bar time
    out_of_order: int = 0
    identical: int = 0            # already stored with the same values: skipped
    written: int = 0              # new bars, plus the replaced ones
    replaced: int = 0             # stored bars overwritten (replace)
    deleted: dict[str, int] = field(default_factory=dict)  # bars of another source deleted (replace)
    gaps: list[Gap] = field(default_factory=list)
    gaps_closed: int = 0

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)

    def summary(self) -> str:
        text = (f"{self.symbol} {self.timeframe}: {self.rows_out} valid rows of {self.rows_in}, "
                f"{self.duplicates_dropped} duplicates dropped, {self.out_of_order} out of order; "
                f"{self.written} written ({self.replaced} replaced), {self.identical} already stored identical; "
                f"{len(self.gaps)} gaps ({self.missing_bars} missing bars), {self.gaps_closed} gaps closed")
        for source, n in self.deleted.items():
            text += f"; deleted the stored {n} {source!r} candles first"
        return text


@dataclass
class _Staged:
    rows_in: int = 0
    out_of_order: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    n_problems: int = 0


def import_csv(store: Store, path: Path, symbol: str, timeframe: str, *, replace: bool = False,
               now: pd.Timestamp | None = None, chunk_rows: int = CHUNK_ROWS, page_rows: int = PAGE_ROWS
               ) -> ImportReport:
    """Check the whole CSV, then write its bars in short transactions (see the module)."""
    timeframe_ms(timeframe)
    path = Path(path)
    read_header(path)
    now_ms = int((now or pd.Timestamp.now("UTC")).value // 1_000_000)
    report = ImportReport(symbol, timeframe)
    create_import_stage(store)
    try:
        staged = _stage_file(store, path, timeframe, now_ms, chunk_rows)
        summary = import_summary(store)
        _refuse_problems(store, path, staged, int(summary["conflicts"]))
        report.rows_in, report.out_of_order = staged.rows_in, staged.out_of_order
        report.rows_out, report.duplicates_dropped = int(summary["n_bars"]), int(summary["duplicates"])
        if report.rows_out == 0:
            return report
        report.deleted = _one_source(store, path, symbol, timeframe, replace=replace)
        report.identical, report.replaced = _compare_stored(store, path, symbol, timeframe, report.rows_out,
                                                           replace=replace)
        report.written = write_import(store, symbol, timeframe, SOURCE, overwrite=replace, page=page_rows)
    finally:
        drop_import_stage(store)
    first, last = int(summary["first_ts"]), int(summary["last_ts"])
    report.gaps = stored_gaps(store, symbol, timeframe, first, last, page=page_rows)
    record_gaps(store, symbol, timeframe, report.gaps, pd.Timestamp(now_ms, unit="ms").strftime("%Y-%m-%d"))
    report.gaps_closed = close_filled_gaps(store, symbol, timeframe)
    logger.info("import-candles %s: %s", path, report.summary())
    return report


def _stage_file(store: Store, path: Path, timeframe: str, now_ms: int, chunk_rows: int) -> _Staged:
    """Read the file chunk by chunk into the staging table; count and keep its problems."""
    staged = _Staged()
    last_ts: int | None = None
    for chunk in read_chunks(path, timeframe, now_ms=now_ms, keep=MAX_PROBLEMS, chunk_rows=chunk_rows):
        rows = chunk.rows
        staged.rows_in += chunk.n_lines
        staged.n_problems += chunk.n_problems
        staged.problems = sorted(staged.problems + chunk.problems)[:MAX_PROBLEMS]
        if len(rows) == 0:
            continue
        ts = rows["ts"].to_numpy(dtype="int64")
        staged.out_of_order += int((np.diff(ts) < 0).sum()) + int(last_ts is not None and ts[0] < last_ts)
        last_ts = int(ts[-1])
        stage_rows(store, ({"ts": int(t), "line": int(line), **dict(zip(CANDLE_COLUMNS, values))}
                           for t, line, *values in rows.itertuples(index=False, name=None)))
    return staged


def _refuse_problems(store: Store, path: Path, staged: _Staged, n_conflicts: int) -> None:
    """DataValidationError listing the file's problems (the first MAX_PROBLEMS, by line)."""
    total = staged.n_problems + n_conflicts
    if not total:
        return
    conflicts = [(int(r["conflict_line"]), f"conflicting duplicate candles (same time, different values) at "
                  f"{ms_to_iso(r['ts'])}: line {int(r['line'])} has other values")
                 for r in import_conflicts(store, MAX_PROBLEMS)]
    listed = sorted(staged.problems + conflicts)[:MAX_PROBLEMS]
    more = f"\n  ... and {total - len(listed)} more" if total > len(listed) else ""
    raise DataValidationError(f"{path}: {total} problem(s), nothing imported:\n"
                              + "\n".join(f"  line {line}: {text}" for line, text in listed) + more)


def _one_source(store: Store, path: Path, symbol: str, timeframe: str, *, replace: bool) -> dict[str, int]:
    """Refuse (or with ``replace`` delete) a stored series of another source."""
    others = other_sources(store, symbol, timeframe, SOURCE)
    if others and not replace:
        raise DataValidationError(
            f"{path}: {symbol} {timeframe} already holds {describe_sources(others)}; a series never mixes "
            f"sources, so nothing was imported. Run again with --replace to delete the stored "
            f"{symbol} {timeframe} series first, or import the file under another symbol name.")
    deleted = {r["source"]: delete_source(store, symbol, timeframe, r["source"]) for r in others}
    for source, n in deleted.items():
        logger.warning("import-candles --replace: deleted %d %r candles of %s %s", n, source, symbol, timeframe)
    return deleted


def _compare_stored(store: Store, path: Path, symbol: str, timeframe: str, n_bars: int, *, replace: bool
                    ) -> tuple[int, int]:
    """(identical, differing) stored bars; refuses differing ones unless ``replace``."""
    cmp = import_compare(store, symbol, timeframe)
    stored, identical = int(cmp["stored"]), int(cmp["identical"])
    differing = stored - identical
    if differing and not replace:
        ts = int(cmp["first_differing_ts"])
        d = import_difference(store, symbol, timeframe, ts)
        what = ", ".join(f"{c} {d[c]!r} (stored {d['stored_' + c]!r})" for c in CANDLE_COLUMNS
                         if d[c] != d["stored_" + c])
        raise DataValidationError(
            f"{path}: {differing} of the file's {n_bars} bars differ from the stored {symbol} {timeframe} "
            f"candles (first: line {int(d['line'])}, {ms_to_iso(ts)}: {what})"
            + (f"; {identical} identical bars are fine" if identical else "")
            + ". Nothing was imported; run again with --replace to overwrite the stored candles with the file's.")
    return identical, differing


