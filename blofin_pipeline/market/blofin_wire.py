"""BloFin's market-data wire format, as pure functions: the {code, msg, data} envelope,
candle rows (newest first, numbers as strings, the `confirm` flag), Retry-After, and the
standard candles DataFrame (shared/API-NOTES.md section 1). The HTTP side is
`blofin_client`'s.
"""
from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx
import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError, ExchangeError

log = logging.getLogger(__name__)

CANDLE_ROW_LENGTH = 9
CANDLE_COLUMNS = ["open", "high", "low", "close", "volume", "volume_quote"]


class CandleRow(NamedTuple):
    """One parsed candle row. `vol` is in contracts, `vol_currency` in the base currency."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    vol: float
    vol_currency: float
    vol_currency_quote: float
    confirmed: bool


def describe(path: str, params: Mapping[str, Any]) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"GET {path}" + (f"?{query}" if query else "")


def body_code(response: httpx.Response) -> str | None:
    """The envelope's `code` as a string, or None when the body is not a JSON object."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and "code" in body:
        return str(body["code"])
    return None


def envelope_data(response: httpx.Response, what: str, request: str) -> list:
    try:
        body = response.json()
    except ValueError as err:
        raise ExchangeError(
            f"BloFin {what}: body is not JSON ({request}): {response.text[:200]!r}"
        ) from err
    if not isinstance(body, dict) or "code" not in body:
        raise ExchangeError(f"BloFin {what}: body is not a {{code, msg, data}} envelope ({request}): {str(body)[:200]!r}")
    code = str(body["code"])
    if code != "0":
        raise ExchangeError(f"BloFin {what}: error code {code}: {body.get('msg', '')!s} ({request})")
    data = body.get("data")
    if not isinstance(data, list):
        raise ExchangeError(f"BloFin {what}: `data` is {type(data).__name__}, expected a list ({request})")
    return data


def parse_candle_row(raw: object, what: str, path: str, params: Mapping[str, Any]) -> CandleRow:
    if not isinstance(raw, list) or len(raw) != CANDLE_ROW_LENGTH:
        raise ExchangeError(
            f"BloFin {what}: candle row {raw!r} is not a list of {CANDLE_ROW_LENGTH} fields "
            f"({describe(path, params)})"
        )
    confirm = str(raw[8])
    if confirm not in ("0", "1"):
        raise ExchangeError(f"BloFin {what}: candle row {raw!r} has confirm {confirm!r}, expected '0' or '1' "
                            f"({describe(path, params)})")
    try:
        ts = int(raw[0])
        values = [float(field) for field in raw[1:8]]
    except (TypeError, ValueError) as err:
        raise ExchangeError(
            f"BloFin {what}: candle row {raw!r} has a non-numeric field ({describe(path, params)})"
        ) from err
    return CandleRow(ts, *values, confirmed=confirm == "1")


def merge_row(by_ts: dict[int, CandleRow], row: CandleRow, inst_id: str, bar: str) -> None:
    """Keep one row per time: a closed row wins over a forming one; two closed rows with
    different values are refused, as conflicting duplicates of a CSV are."""
    seen = by_ts.get(row.ts)
    if seen is None or (row.confirmed and not seen.confirmed):
        by_ts[row.ts] = row
    elif row.confirmed and seen.confirmed and row[1:8] != seen[1:8]:
        when = pd.Timestamp(row.ts, unit="ms", tz="UTC").isoformat()
        raise DataValidationError(
            f"{inst_id} {bar}: conflicting duplicate candles (same time, different values) at {when} across "
            f"BloFin pages: {list(seen[1:5])} and {list(row[1:5])} (open, high, low, close); nothing stored")


def closed_only(rows: list[CandleRow], inst_id: str, bar: str) -> list[CandleRow]:
    closed = [row for row in rows if row.confirmed]
    if len(closed) < len(rows):
        log.info("BloFin candles %s %s: dropped %d unclosed candle(s) (confirm=0)",
                 inst_id, bar, len(rows) - len(closed))
    return closed


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        log.warning("ignoring unreadable Retry-After header %r", value)
        return None
    return max(0.0, when.timestamp() - time.time())


def candles_frame(rows: list[CandleRow]) -> pd.DataFrame:
    """Rows (any order, unique ts) -> candles DataFrame: UTC "ts" index ascending, float64 columns."""
    rows = sorted(rows, key=lambda row: row.ts)
    index = pd.to_datetime(np.array([row.ts for row in rows], dtype="int64"), unit="ms", utc=True)
    index.name = "ts"
    columns = {
        "open": [row.open for row in rows],
        "high": [row.high for row in rows],
        "low": [row.low for row in rows],
        "close": [row.close for row in rows],
        "volume": [row.vol_currency for row in rows],
        "volume_quote": [row.vol_currency_quote for row in rows],
    }
    return pd.DataFrame({name: np.array(values, dtype="float64") for name, values in columns.items()},
                        index=index)[CANDLE_COLUMNS]
