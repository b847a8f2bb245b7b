"""Reading a candle CSV a bounded chunk at a time, with every problem found per line.

The file is ``ts,open,high,low,close,volume`` (header required, any column order, extra
columns ignored); ``ts`` is epoch milliseconds or ISO 8601 (no offset = UTC), row by
row. Each chunk comes back as the rows that are fine (with their line numbers) and the
problems of the others, so a caller can stream any file size in flat memory and still
list what is wrong with it, line by line.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.validation import CANDLE_COLUMNS, problem_masks
from blofin_pipeline.timeframes import timeframe_ms

CSV_COLUMNS = ("ts", *CANDLE_COLUMNS)
MIN_EPOCH_MS = 10**11   # below this a number is seconds, not milliseconds (1973 in ms)
MAX_TS_DIGITS = 18      # digits that surely fit an int64; longer numbers are out of range unread
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01: no candle time is later
CHUNK_ROWS = 50_000     # rows parsed (and staged) at a time: memory stays flat in file size
OTHER_DELIMITERS = (";", "\t", "|")
EXTRA_FIELDS = tuple(f"_extra_{i}" for i in range(4))  # room to see (and refuse) rows longer than the header


@dataclass
class Chunk:
    """One chunk's fine rows (epoch ms ts, line, CANDLE_COLUMNS) and its problems."""

    rows: pd.DataFrame
    problems: list[tuple[int, str]] = field(default_factory=list)
    n_problems: int = 0     # all of them; `problems` keeps the first few
    n_lines: int = 0        # data lines read (blank lines not counted)


def read_header(path: Path) -> list[str]:
    """The file's column names (lower case), after checking it is a readable CSV with them."""
    if path.is_dir():
        raise DataValidationError(f"{path} is a directory; give the path of a CSV file")
    if not path.exists():
        raise DataValidationError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as err:
        raise DataValidationError(f"{path}: not a readable UTF-8 text file ({type(err).__name__}: {err})") from err
    if not first.strip():
        raise DataValidationError(f"{path}: empty file; expected a header {','.join(CSV_COLUMNS)}")
    columns = [c.strip().lower() for c in next(csv.reader([first]))]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        hint = next((f" (is it {d!r}-separated? import-candles reads comma-separated files)"
                     for d in OTHER_DELIMITERS if d in first), "")
        raise DataValidationError(f"{path}: missing columns {missing}; expected {','.join(CSV_COLUMNS)}{hint}")
    return columns


def read_chunks(path: Path, timeframe: str, *, now_ms: int, keep: int, chunk_rows: int = CHUNK_ROWS
                ) -> Iterator[Chunk]:
    """The file, ``chunk_rows`` lines at a time; at most ``keep`` problems kept per chunk."""
    columns = read_header(path)
    line = 2
    try:
        reader = pd.read_csv(path, header=None, skiprows=1, names=[*columns, *EXTRA_FIELDS], index_col=False,
                             dtype=str, keep_default_na=False, skip_blank_lines=False, chunksize=chunk_rows,
                             encoding="utf-8")
        for raw in reader:
            yield parse_chunk(raw, timeframe, first_line=line, now_ms=now_ms, keep=keep)
            line += len(raw)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        where = re.search(r"line (\d+)", str(err))  # the parser names the file's line
        yield Chunk(rows=_empty_rows(), n_problems=1, problems=[
            (int(where.group(1)) if where else line, f"unreadable from here on: {str(err).strip()[:200]}")])


def parse_chunk(raw: pd.DataFrame, timeframe: str, *, first_line: int, now_ms: int, keep: int) -> Chunk:
    """Rows of text -> the fine rows and the problems (line numbers from ``first_line``).
    Blank lines are skipped (they still count for the line numbers)."""
    lines = np.arange(first_line, first_line + len(raw))
    text = raw.fillna("").apply(lambda col: col.str.strip())
    filled = (text != "").any(axis=1).to_numpy()
    text, lines = text[filled], lines[filled]
    ts, problems = _parse_ts(text["ts"], timeframe, now_ms)
    longer = (text[list(EXTRA_FIELDS)] != "").any(axis=1).to_numpy()
    problems.append((longer, [f"more fields than the header's {len(raw.columns) - len(EXTRA_FIELDS)}"]
                     * int(longer.sum())))
    values = np.empty((len(text), len(CANDLE_COLUMNS)))
    for j, col in enumerate(CANDLE_COLUMNS):
        num = pd.to_numeric(text[col], errors="coerce")
        bad = num.isna().to_numpy() & (text[col].str.lower() != "nan").to_numpy()
        problems.append((bad, [f"{col} {v!r} is not a number" for v in text[col].to_numpy()[bad]]))
        values[:, j] = num.to_numpy(dtype="float64", na_value=np.nan)
    unparsed = np.zeros(len(text), dtype=bool)
    for bad, _ in problems:
        unparsed |= bad
    for message, bad in problem_masks(np.where(unparsed, 0, ts), values, timeframe):
        bad = bad & ~unparsed
        problems.append((bad, [message] * int(bad.sum())))
    return _chunk(ts, lines, values, problems, keep)


def _parse_ts(text: pd.Series, timeframe: str, now_ms: int) -> tuple[np.ndarray, list[tuple[np.ndarray, list[str]]]]:
    """Epoch ms per row (0 where unreadable) and the problems, each (row mask, messages)."""
    values = text.to_numpy(dtype=object)
    digits = text.str.fullmatch(r"\d+").to_numpy(dtype=bool)
    ts = np.zeros(len(text), dtype="int64")
    readable = digits & (text.str.len().to_numpy() <= MAX_TS_DIGITS)
    ts[readable] = text[readable].astype("int64").to_numpy()
    out_of_range = digits & ~readable
    out_of_range[readable] = ts[readable] >= MAX_EPOCH_MS
    seconds = readable & (ts < MIN_EPOCH_MS)
    iso = ~digits
    parsed = pd.to_datetime(text[iso], utc=True, errors="coerce", format="ISO8601")
    unreadable = np.zeros(len(text), dtype=bool)
    unreadable[iso] = parsed.isna().to_numpy()
    ts[iso & ~unreadable] = parsed.dropna().dt.as_unit("ms").astype("int64").to_numpy()
    out_of_range[iso & ~unreadable] = ts[iso & ~unreadable] >= MAX_EPOCH_MS
    future = ~(out_of_range | seconds | unreadable) & (ts + timeframe_ms(timeframe) > now_ms)
    now_iso = _iso(now_ms // 1000 * 1000)
    return ts, [
        (out_of_range, [f"ts {v!r} is out of range (candle times end before {_iso(MAX_EPOCH_MS)[:10]})"
                        for v in values[out_of_range]]),
        (seconds, [f"ts {v!r} looks like seconds; ts must be epoch milliseconds" for v in values[seconds]]),
        (unreadable, [f"ts {v!r} is neither epoch ms nor ISO 8601 (or out of range)" for v in values[unreadable]]),
        (future, [f"the {timeframe} bar at {_iso(t)} closes after now ({now_iso}): only closed candles"
                  for t in ts[future]]),
    ]


def _chunk(ts: np.ndarray, lines: np.ndarray, values: np.ndarray,
           problems: list[tuple[np.ndarray, list[str]]], keep: int) -> Chunk:
    bad_rows = np.zeros(len(ts), dtype=bool)
    listed: list[tuple[int, str]] = []
    n = 0
    for bad, messages in problems:
        bad_rows |= bad
        n += int(bad.sum())
        listed.extend(zip(lines[bad].tolist(), messages))
    listed.sort(key=lambda p: p[0])
    fine = ~bad_rows
    rows = pd.DataFrame(values[fine], columns=list(CANDLE_COLUMNS))
    rows.insert(0, "line", lines[fine])
    rows.insert(0, "ts", ts[fine])
    return Chunk(rows=rows, problems=listed[:keep], n_problems=n, n_lines=len(ts))


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in ("ts", "line", *CANDLE_COLUMNS)})


def _iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()
