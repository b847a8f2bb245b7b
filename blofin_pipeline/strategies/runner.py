"""The one way the pipeline runs a strategy: `signal_function(code, origin=...)`.

It returns a signal function ``fn(candles, params) -> pd.Series`` of validated
positions, with the strategy's declared ``name``, ``category``, ``params`` (defaults)
and ``param_space`` as attributes:

* a **built-in** (origin ``"builtin"`` and the exact source shipped in this package) runs
  in-process, as the shipped class;
* **anything else** (designer and tuner output, users' files, a registry row claiming to
  be a built-in with other code) runs in the kernel sandbox: a locked-down child of the
  fork server loads it once and answers each call with numbers only. Its declared
  attributes come from the child, as plain JSON.

So callers change by one line, e.g. in scoring::

    fn = signal_function_for(record)           # instead of record.load()
    walk_forward(candles, fn, fn.params, fn.param_space, ...)

A sandboxed function holds one child; `close()` it (or use it as a context manager) when
done. It is also closed when garbage-collected, and at most `MAX_OPEN_SANDBOXES` stay
open at once (the least recently used is closed and reopened on its next call).
`raw(candles, params)` gives the unvalidated values (NaN kept) for the lookahead check,
`prefixes(...)` a whole batch of its cuts in one call (in the child, for sandboxed code).
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError, StrategyRejected
from blofin_pipeline.strategies.base import (
    CATEGORIES,
    Strategy,
    check_signal_values,
    code_hash,
    signal_values,
)
from blofin_pipeline.strategies import _wire
from blofin_pipeline.strategies.prefixes import prefix_outputs
from blofin_pipeline.strategies.safety import declared_name, static_check
from blofin_pipeline.strategies.sandbox import SandboxLimits, SandboxSession
from blofin_pipeline.strategies.sanitize import safe_name, safe_reason, safe_text

log = logging.getLogger(__name__)

MAX_OPEN_SANDBOXES = 8
BATCH_CALLS = 10  # a lookahead batch (thousands of short runs) gets 10 calls' time and CPU
SPLIT_CUTS = 200  # a larger batch runs in two children at once (where there are two cores)
BATCH_CHILDREN = 2 if (os.cpu_count() or 1) >= 2 else 1


class SignalFunction(Protocol):
    """What `signal_function` returns (in-process or sandboxed alike)."""

    name: str
    category: str
    params: dict[str, Any]
    param_space: dict[str, tuple[float, float]]
    sandboxed: bool

    def __call__(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series: ...

    def raw(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series: ...

    def prefixes(self, candles: pd.DataFrame, params: dict | None, start: int,
                 cuts: np.ndarray, *, last_only: bool) -> np.ndarray: ...

    def close(self) -> None: ...


class InProcessStrategy:
    """A shipped built-in: its own class, in this process."""

    sandboxed = False

    def __init__(self, strategy_cls: type[Strategy]) -> None:
        self.strategy_cls = strategy_cls
        self.name = strategy_cls.name
        self.category = strategy_cls.category
        self.params = dict(strategy_cls.params)
        self.param_space = {k: tuple(v) for k, v in strategy_cls.param_space.items()}
        self.description = strategy_cls.description

    def __call__(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        return Strategy.signals(self.strategy_cls(params), candles)

    def raw(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        return pd.Series(self._values(candles, params), index=candles.index)

    def prefixes(self, candles: pd.DataFrame, params: dict | None, start: int,
                 cuts: np.ndarray, *, last_only: bool) -> np.ndarray:
        """Raw outputs on ``candles[start : t + 1]`` for every cut t (`prefix_outputs`)."""
        return prefix_outputs(lambda frame: self._values(frame, params), candles, start, cuts,
                              last_only=last_only)

    def _values(self, candles: pd.DataFrame, params: dict | None) -> np.ndarray:
        strategy = self.strategy_cls(params)
        try:
            raw = strategy.generate_signals(candles.copy(deep=False))
        except (Exception, SystemExit) as err:
            raise StrategyError(f"strategy {self.name!r} failed in generate_signals: "
                                f"{type(err).__name__}: {err}") from err
        return signal_values(raw, candles, self.name)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> InProcessStrategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InProcessStrategy({self.name!r})"


class SandboxedStrategy:
    """Untrusted strategy code, run call by call in a locked-down child process."""

    sandboxed = True

    def __init__(self, code: str, *, origin: str, label: str | None = None,
                 limits: SandboxLimits | None = None) -> None:
        self.code = code
        self.origin = origin
        self.limits = limits or SandboxLimits()
        self.name = safe_name(label or origin)
        self._lock = threading.Lock()
        self._session: SandboxSession | None = None
        self._poisoned: str | None = None
        self._finalizer = weakref.finalize(self, _close_session, self.__dict__)
        try:
            self._describe(self._open().description)
        except BaseException:
            self.close()
            raise

    # -- the child ----------------------------------------------------------------------
    def _open(self) -> SandboxSession:
        if self._poisoned:
            raise StrategyError(self._poisoned)
        session = SandboxSession(self.code, origin=self.origin, label=self.name,
                                 limits=self.limits)
        self._session = session
        _track(self)
        return session

    def _describe(self, reply: dict[str, Any]) -> None:
        name, category = reply.get("name"), reply.get("category")
        params, space = reply.get("params"), reply.get("param_space")
        if not (isinstance(name, str) and isinstance(category, str)
                and isinstance(params, dict) and isinstance(space, dict)):
            raise StrategyError(f"strategy {self.name!r}: the sandbox gave no description")
        self.name = safe_name(name)
        if category not in CATEGORIES:
            raise StrategyError(f"strategy {self.name!r}: category {safe_text(category, 40)!r}"
                                f" is not one of {', '.join(CATEGORIES)}")
        self.category = category
        self.params = {safe_name(k): _plain(v) for k, v in params.items()}
        self.param_space = {}
        for key, bounds in space.items():
            if not (isinstance(bounds, list) and len(bounds) == 2
                    and all(_is_number(b) for b in bounds)):
                raise StrategyError(f"strategy {self.name!r}: bad param_space entry "
                                    f"{safe_text(key, 40)!r}")
            self.param_space[safe_name(key)] = (bounds[0], bounds[1])
        self.description = safe_text(reply.get("description") or "", 500)

    def _run(self, candles: pd.DataFrame, params: dict | None) -> np.ndarray:
        return self._in_session(lambda session: session.signals(candles, params))

    def _in_session(self, call: Callable[[SandboxSession], np.ndarray]) -> np.ndarray:
        with self._lock:
            session = self._session
            if session is None or session.dead:
                session = self._open()
            _touch(self)
            try:
                return call(session)
            except StrategyError as err:
                if session.dead and (session.death or {}).get("signal") == signal.SIGSYS:
                    # SIGSYS: a forbidden system call. Such code is hostile; never again.
                    self._poisoned = str(err)
                raise

    # -- the signal function ----------------------------------------------------------
    def __call__(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        """Validated positions on the candles' index (warm-up NaN -> 0)."""
        return check_signal_values(self._run(candles, params), candles, self.name)

    def raw(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        """The unvalidated output as float64 on the candles' index (NaN kept)."""
        return pd.Series(self._run(candles, params), index=candles.index, dtype="float64")

    def prefixes(self, candles: pd.DataFrame, params: dict | None, start: int,
                 cuts: np.ndarray, *, last_only: bool) -> np.ndarray:
        """Raw outputs on ``candles[start : t + 1]`` for every cut t, computed by the
        child in ONE request; the batch may use `BATCH_CALLS` times a call's limits. A
        batch of at least `SPLIT_CUTS` cuts is split in two halves, the second one run
        at the same time by a second, short-lived child of the same code (two cores)."""
        cuts = np.asarray(cuts, dtype=np.int64)
        limits = {"timeout": self.limits.call_timeout * BATCH_CALLS,
                  "cpu_seconds": self.limits.call_cpu_seconds * BATCH_CALLS, "last_only": last_only}
        if len(cuts) < SPLIT_CUTS or BATCH_CHILDREN < 2:
            return self._in_session(lambda s: s.prefixes(candles, params, start, cuts, **limits))
        first, second = np.array_split(cuts, 2)
        helper = SandboxSession(self.code, origin=self.origin, label=self.name, limits=self.limits)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                later = pool.submit(helper.prefixes, candles, params, start, second, **limits)
                try:
                    values = self._in_session(lambda s: s.prefixes(candles, params, start, first,
                                                                   **limits))
                finally:
                    more = later.exception() or later.result()
        finally:
            helper.close()
        if isinstance(more, BaseException):
            if (helper.death or {}).get("signal") == signal.SIGSYS:
                self._poisoned = str(more)
            raise more
        return np.concatenate([values, more])

    def close(self) -> None:
        """Kill the child; a later call starts a new one."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
        with _open_lock:
            _open_sandboxes.pop(id(self), None)

    def __enter__(self) -> SandboxedStrategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SandboxedStrategy({self.name!r})"


def _close_session(state: dict[str, Any]) -> None:
    session = state.get("_session")
    if session is not None:
        session.close(wait=False)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, (int, float, bool, type(None))):
        return value
    if isinstance(value, str):
        return safe_text(value, 200)
    if isinstance(value, list):
        return [_plain(v) for v in value[:100]]
    return safe_text(repr(value), 200)


# --- a bound on open children ------------------------------------------------------------
_open_sandboxes: collections.OrderedDict[int, weakref.ref] = collections.OrderedDict()
_open_lock = threading.Lock()


def _track(fn: SandboxedStrategy) -> None:
    evict = []
    with _open_lock:
        _open_sandboxes[id(fn)] = weakref.ref(fn)
        _open_sandboxes.move_to_end(id(fn))
        while len(_open_sandboxes) > MAX_OPEN_SANDBOXES:
            _, ref = _open_sandboxes.popitem(last=False)
            other = ref()
            if other is not None and other is not fn:
                evict.append(other)
    for other in evict:
        session = other._session
        if session is not None and other._lock.acquire(blocking=False):
            try:
                session.close()
                other._session = None
            finally:
                other._lock.release()


def _touch(fn: SandboxedStrategy) -> None:
    with _open_lock:
        if id(fn) in _open_sandboxes:
            _open_sandboxes.move_to_end(id(fn))


# --- the entry point ---------------------------------------------------------------------
def _shipped_builtin(code: str) -> type[Strategy] | None:
    from blofin_pipeline.strategies.builtin import builtin_strategies, builtin_strategy_sources

    digest = code_hash(code)
    for name, source in builtin_strategy_sources().items():
        if code_hash(source) == digest:
            return builtin_strategies()[name]
    return None


def signal_function(code: str, *, origin: str, label: str | None = None,
                    limits: SandboxLimits | None = None) -> SignalFunction:
    """The signal function of a strategy's code: in-process for a shipped built-in,
    in the kernel sandbox for every other origin.

    Raises StrategyError if sandboxed code cannot be loaded (syntax error, no Strategy
    class, bad declaration...), SandboxUnavailable if the sandbox cannot be set up.
    """
    if origin == "builtin":
        shipped = _shipped_builtin(code)
        if shipped is not None:
            return InProcessStrategy(shipped)
        log.warning("strategy %s claims to be a built-in but is not the shipped code: "
                    "it runs in the sandbox", safe_name(label or origin))
    return SandboxedStrategy(code, origin=origin, label=label, limits=limits)


def signal_function_for(record: Any, limits: SandboxLimits | None = None) -> SignalFunction:
    """`signal_function` of a registry record (anything with .code, .origin and .ref)."""
    return signal_function(record.code, origin=str(record.origin), label=str(record.ref),
                           limits=limits)


def run_in_sandbox(
    code: str,
    candles: pd.DataFrame,
    params: dict | None = None,
    *,
    timeout: float = 30.0,
    cpu_seconds: int = 20,
    memory_mb: int = 1024,
    check_static: bool = True,
) -> pd.Series:
    """Validated signals of untrusted `code` on `candles`, computed once in a sandboxed child.

    Runs the static check first (unless `check_static=False`); raises StrategyRejected
    with a clear reason on a static violation, timeout, CPU or memory limit, crash,
    forbidden system call or bad output.
    """
    label = safe_name(declared_name(code) or "<strategy>")
    if check_static:
        reasons = static_check(code)
        if reasons:
            raise StrategyRejected(label, [safe_reason(r) for r in reasons])
    _wire.check_candles_frame(candles)
    limits = SandboxLimits(call_timeout=timeout, call_cpu_seconds=cpu_seconds,
                           memory_mb=memory_mb, load_timeout=timeout)
    try:
        with SandboxedStrategy(code, origin="<strategy>", label=label, limits=limits) as fn:
            return fn(candles, params)
    except StrategyError as err:
        raise StrategyRejected(label, [safe_reason(err)]) from None
