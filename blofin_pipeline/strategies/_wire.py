"""The framing between the pipeline and a sandboxed child: JSON header + raw arrays.

A frame is ``MAGIC, header length (u32), payload length (u64), header, payload``. The
header is a JSON object; its ``arrays`` entry lists ``[name, dtype, length]`` of the
1-D arrays packed back to back in the payload. Only float64 and int64 arrays exist on
the wire, and only JSON in the header: nothing is ever unpickled, and a reader bounds
both lengths before reading, so a hostile child can send numbers, short strings and
nothing else.
"""
from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError, StrategyError
from blofin_pipeline.strategies.base import CANDLE_COLUMNS

MAGIC = b"BFS1"
_PREFIX = struct.Struct("<4sIQ")
DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}
MAX_HEADER_BYTES = 1 << 20


class WireError(Exception):
    """A frame was malformed, too large, late, or the other end closed the pipe."""


class WireTimeout(WireError):
    """The deadline passed before the whole frame was read or written."""


class WireClosed(WireError):
    """The other end closed the pipe (for a child: it exited or was killed)."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    arrays = arrays or {}
    spec, chunks = [], []
    for name, values in arrays.items():
        values = np.ascontiguousarray(values)
        code = {"f": "f8", "i": "i8"}.get(values.dtype.kind)
        if code is None or values.ndim != 1:
            raise WireError(f"array {name!r}: only 1-D float64/int64 travel on the wire")
        values = values.astype(DTYPES[code], copy=False)
        spec.append([name, code, int(values.size)])
        chunks.append(values.tobytes())
    head = json.dumps(dict(header, arrays=spec), separators=(",", ":"),
                      allow_nan=True).encode("utf-8")
    payload = b"".join(chunks)
    return _PREFIX.pack(MAGIC, len(head), len(payload)) + head + payload


def decode(head: bytes, payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise WireError(f"header is not JSON ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    spec = header.pop("arrays", [])
    if not isinstance(spec, list):
        raise WireError("bad array list")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for item in spec:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
                and item[1] in DTYPES and isinstance(item[2], int) and item[2] >= 0):
            raise WireError("bad array description")
        name, code, count = item
        size = DTYPES[code].itemsize * count
        if offset + size > len(payload):
            raise WireError("arrays overrun the payload")
        # A copy: writable, and independent of the received buffer.
        arrays[name] = np.frombuffer(payload, DTYPES[code], count, offset).copy()
        offset += size
    if offset != len(payload):
        raise WireError("payload has trailing bytes")
    return header, arrays


def _wait(fd: int, deadline: float | None, for_write: bool) -> None:
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise WireTimeout("deadline passed")
        watch = ([], [fd], []) if for_write else ([fd], [], [])
        ready = select.select(*watch, remaining)
        if ready[1 if for_write else 0]:
            return


def write_frame(fd: int, frame: bytes, deadline: float | None = None) -> None:
    """Write all of `frame`; with a deadline the fd must be non-blocking."""
    view = memoryview(frame)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            _wait(fd, deadline, for_write=True)
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise WireClosed("the other end closed the pipe") from None
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            _wait(fd, deadline, for_write=False)
        try:
            chunk = os.read(fd, min(size - got, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise WireClosed("the other end closed the pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, *, max_payload: int, deadline: float | None = None,
               max_header: int = MAX_HEADER_BYTES) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one frame; WireError if it is malformed or larger than the bounds."""
    magic, head_len, payload_len = _PREFIX.unpack(_read_exact(fd, _PREFIX.size, deadline))
    if magic != MAGIC:
        raise WireError("bad frame magic")
    if head_len > max_header or payload_len > max_payload:
        raise WireError(f"frame too large ({head_len} + {payload_len} bytes)")
    head = _read_exact(fd, head_len, deadline)
    payload = _read_exact(fd, payload_len, deadline) if payload_len else b""
    return decode(head, payload)



def plain_params(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Parameters as JSON values (numpy scalars unwrapped); StrategyError otherwise."""
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            value = value.item()
        out[str(key)] = value
    try:
        json.dumps(out)
    except (TypeError, ValueError) as err:
        raise StrategyError(f"parameters {params!r} are not plain numbers or strings") from err
    return out


def same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """The same arrays, NaN equal to NaN (are these the candles the child holds?)."""
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=True) for k in a)


# --- candles ---------------------------------------------------------------------------
def check_candles_frame(candles: pd.DataFrame) -> None:
    if not isinstance(candles, pd.DataFrame) or not isinstance(candles.index, pd.DatetimeIndex):
        raise DataValidationError("sandbox candles must be a DataFrame with a DatetimeIndex")
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise DataValidationError(f"sandbox candles lack column(s) {', '.join(missing)}")
    if len(candles) == 0:
        raise DataValidationError("sandbox candles are empty")


def encode_candles(candles: pd.DataFrame) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The wire form of a candles frame: the index as integers in its unit (UTC), its
    time zone, and the five float64 columns, row-major in one array."""
    check_candles_frame(candles)
    index = candles.index
    header = {"tz": None if index.tz is None else str(index.tz), "unit": index.unit,
              "rows": len(candles)}
    if list(candles.columns) == list(CANDLE_COLUMNS) and all(
            dtype == np.float64 for dtype in candles.dtypes):
        values = candles.to_numpy(dtype="float64", copy=False)  # one block: a view
    else:
        values = np.column_stack([candles[c].to_numpy(dtype="float64", na_value=np.nan)
                                  for c in CANDLE_COLUMNS])
    return header, {"ts": index.asi8, "ohlcv": np.ascontiguousarray(values).ravel()}


def decode_candles(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """The candles frame of a request (the inverse of `encode_candles`)."""
    rows = int(header["rows"])
    index = pd.DatetimeIndex(arrays["ts"].astype(f"datetime64[{header.get('unit') or 'ns'}]"),
                             name="ts")
    tz = header.get("tz")
    if tz:
        index = index.tz_localize("UTC")
        if tz != "UTC":
            index = index.tz_convert(tz)
    values = arrays["ohlcv"].reshape(rows, len(CANDLE_COLUMNS))
    return pd.DataFrame(values, index=index, columns=list(CANDLE_COLUMNS))
