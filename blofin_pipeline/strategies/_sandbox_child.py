"""What a sandboxed child does once it is locked down: serve one strategy's calls.

The fork server forks the child, which locks itself down (`lockdown.lock_child`) and
then answers framed requests (`_wire`) from the pipeline on its own pipes:

* ``load``: compile the code and describe its class (name, category, params,
  param_space) - all plain JSON;
* ``signals``: run ``generate_signals`` on the candles sent with the request, with the
  given parameters, and answer the raw float64 values (NaN kept: the pipeline
  validates them, in strict or, for the lookahead check, lenient mode);
* ``prefixes``: a lookahead batch: ``generate_signals`` on the prefixes
  ``candles[start : t + 1]`` of every cut t sent (`prefixes.prefix_outputs`), answered
  as one array, so thousands of cuts cost one round trip.

Every call executes the module afresh (a new namespace, a new class), so nothing a
strategy keeps in module or class state survives from one call to the next: the
lookahead check's cuts cannot see the full data through a cache. Failures are answered
as (kind, exception type, message, line): the pipeline sanitises them again, because
from the first ``exec`` on, nothing in this process is trusted.
"""
from __future__ import annotations

import math
import traceback
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies import _wire, lockdown
from blofin_pipeline.strategies.base import (
    code_hash,
    compile_strategy,
    signal_values,
    strategy_class_from,
)
from blofin_pipeline.strategies.prefixes import prefix_outputs
from blofin_pipeline.strategies.sanitize import safe_text

MAX_REQUEST_BYTES = 512 * 1024 * 1024
MESSAGE_CHARS = 2000  # the pipeline cuts further; this bounds what crosses the pipe


class _Job:
    """The strategy this child serves: its compiled module, and where it came from."""

    def __init__(self) -> None:
        self.compiled: Any = None
        self.digest = ""
        self.origin = "<strategy>"
        self.name = "<strategy>"
        self.candles: pd.DataFrame | None = None  # the last candles received

    def candles_for(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
        """A private copy of the request's candles (or of the last ones, if unchanged):
        whatever the strategy does to its frame, the next call gets the original."""
        if not header.get("same_candles"):
            self.candles = None
            self.candles = _wire.decode_candles(header, arrays)
        if self.candles is None:
            raise StrategyError("no candles received")
        return self.candles.copy(deep=True)

    def fresh_class(self) -> type:
        return strategy_class_from(self.compiled, self.digest, origin=self.origin)


def _line_in_strategy(err: BaseException, origin: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == origin:
            line = frame.lineno
    cause = err.__cause__ or err.__context__
    if line is None and cause is not None and cause is not err:
        for frame in traceback.extract_tb(cause.__traceback__):
            if frame.filename == origin:
                line = frame.lineno
    return line


def _caused_by(err: BaseException | None, kind: type[BaseException]) -> bool:
    for _ in range(20):
        if err is None:
            return False
        if isinstance(err, kind):
            return True
        err = err.__cause__ or err.__context__
    return False


def _failure(err: BaseException, job: _Job) -> dict[str, Any]:
    if _caused_by(err, MemoryError):
        kind = "memory"
    elif isinstance(err, StrategyError) and not _caused_by(err, RecursionError):
        kind = "strategy"
    elif isinstance(err, (Exception, SystemExit)):
        kind = "error"
    else:  # KeyboardInterrupt, GeneratorExit... raised by untrusted code
        kind = "crash"
    return {"ok": False, "kind": kind, "type": type(err).__name__,
            "message": safe_text(err, MESSAGE_CHARS),
            "line": _line_in_strategy(err, job.origin)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _load(job: _Job, header: dict[str, Any]) -> dict[str, Any]:
    code = str(header.get("code", ""))
    job.origin = str(header.get("origin") or "<strategy>")
    job.compiled = compile_strategy(code, origin=job.origin)
    job.digest = code_hash(code)
    cls = job.fresh_class()
    job.name = cls.name
    return {
        "ok": True, "name": cls.name, "category": cls.category,
        "params": {str(k): _jsonable(v) for k, v in cls.params.items()},
        "param_space": {str(k): _jsonable(v) for k, v in cls.param_space.items()},
        "description": str(getattr(cls, "description", "") or "")[:MESSAGE_CHARS],
    }


def _run_strategy(job: _Job, params: dict[str, Any] | None, candles: pd.DataFrame) -> np.ndarray:
    """generate_signals of a fresh class on `candles`, as float64 values (NaN kept)."""
    cls = job.fresh_class()
    strategy = cls(params or None)
    try:
        raw = strategy.generate_signals(candles.copy(deep=False))
    except StrategyError:
        raise
    except (Exception, SystemExit) as err:  # the strategy's failure, named as such
        raise StrategyError(f"strategy {cls.name!r} failed in generate_signals: "
                            f"{type(err).__name__}: {err}") from err
    return signal_values(raw, candles, cls.name)


def _signals(job: _Job, header: dict[str, Any],
             arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    lockdown.set_call_cpu_limit(int(header.get("cpu_seconds", 20)))
    candles = job.candles_for(header, arrays)
    return {"ok": True}, {"values": _run_strategy(job, header.get("params"), candles)}


def _prefixes(job: _Job, header: dict[str, Any],
              arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every cut of a lookahead batch, each on its own prefix and a fresh class."""
    lockdown.set_call_cpu_limit(int(header.get("cpu_seconds", 20)))
    candles = job.candles_for(header, arrays)
    params = header.get("params")
    values = prefix_outputs(lambda frame: _run_strategy(job, params, frame), candles,
                            int(header.get("start", 0)), arrays.get("cuts", np.empty(0, np.int64)),
                            last_only=bool(header.get("last_only")))
    return {"ok": True}, {"values": values}


def serve(job_fd: int, reply_fd: int) -> int:
    """Answer requests until the pipeline closes the pipe."""
    job = _Job()
    while True:
        try:
            header, arrays = _wire.read_frame(job_fd, max_payload=MAX_REQUEST_BYTES)
        except _wire.WireError:
            return 0
        op = header.get("op")
        reply: dict[str, Any]
        out: dict[str, np.ndarray] = {}
        try:
            if op == "load":
                reply = _load(job, header)
            elif op == "signals" and job.compiled is not None:
                reply, out = _signals(job, header, arrays)
            elif op == "prefixes" and job.compiled is not None:
                reply, out = _prefixes(job, header, arrays)
            else:
                reply = {"ok": False, "kind": "protocol", "type": "ProtocolError",
                         "message": f"unexpected request {op!r}", "line": None}
        except BaseException as err:  # noqa: BLE001 - everything is the strategy's doing
            reply, out = _failure(err, job), {}
        del arrays
        _wire.write_frame(reply_fd, _wire.encode(reply, out))
