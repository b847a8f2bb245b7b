"""The strategy contract: one `Strategy` subclass per file, DataFrame in, Series out.

A strategy turns a candles frame (UTC DatetimeIndex named ``ts``, float columns
``open, high, low, close, volume``) into a target position in [-1, 1] per bar, decided
at that bar's close; the backtester holds it over the next bar.

Output policy of :meth:`Strategy.signals` (the only way the pipeline calls a strategy):

* the result must be a ``pd.Series`` on exactly the candles' index (bool and integer
  values are accepted and converted to float64);
* a leading run of NaN is the indicator warm-up and is filled with 0 (flat);
* a NaN after the first decided bar, an infinite value, a value outside [-1, 1] or an
  output that is NaN on every bar is an error;
* any exception raised by the strategy becomes a :class:`StrategyError` naming it, in
  the spirit of freqtrade's ``strategy_wrapper``.
"""
from __future__ import annotations

import abc
import copy
import hashlib
import logging
import math
import numbers
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (
    "trend", "mean_reversion", "breakout", "volatility", "momentum", "volume",
)
CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
# Names the pipeline gives strategies: snake_case, at most NAME_MAX characters.
NAME_MAX = 64
# Tolerance when checking the [-1, 1] bound, so 1 + 1e-15 from float arithmetic passes.
BOUND_TOLERANCE = 1e-9


class Strategy(abc.ABC):
    """Base class of every strategy (built-in, tuned or generated)."""

    name: str = ""
    category: str = ""
    params: dict[str, Any] = {}
    param_space: dict[str, tuple[float, float]] = {}
    description: str = ""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        merged = copy.deepcopy(type(self).params)
        if params:
            unknown = sorted(set(params) - set(merged))
            if unknown:
                raise StrategyError(
                    f"strategy {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(merged)) or '(none)'}"
                )
            for key, value in params.items():
                merged[key] = _check_param(self.name, key, value, self.param_space.get(key))
        # Instance attribute shadows the class-level defaults on purpose.
        self.params = merged

    @abc.abstractmethod
    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        """Target position in [-1, 1] per bar, decided at that bar's close."""

    def signals(self, candles: pd.DataFrame) -> pd.Series:
        """Run :meth:`generate_signals` and validate its output (see module docstring)."""
        try:
            # A shallow copy is free under pandas copy-on-write and keeps a strategy
            # that adds or overwrites columns from changing the caller's frame.
            raw = self.generate_signals(candles.copy(deep=False))
        except StrategyError:
            raise
        except (Exception, SystemExit) as err:  # any failure is the strategy's error
            raise StrategyError(
                f"strategy {self.name!r} failed in generate_signals: "
                f"{type(err).__name__}: {err}"
            ) from err
        return validate_signals(raw, candles, self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params!r})"


def _check_param(name: str, key: str, value: Any, bounds: tuple[float, float] | None) -> Any:
    """One parameter value against its declared range; ints stay ints."""
    if bounds is None:
        return value
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StrategyError(
            f"strategy {name!r}: parameter {key!r} must be a number, got {value!r}"
        )
    if isinstance(low, numbers.Integral) and isinstance(high, numbers.Integral):
        if float(value) != math.floor(float(value)):
            raise StrategyError(
                f"strategy {name!r}: parameter {key!r} must be an integer, got {value!r}"
            )
        value = int(value)
    else:
        value = float(value)
    if not (low <= value <= high):
        raise StrategyError(
            f"strategy {name!r}: parameter {key!r}={value!r} outside its range "
            f"[{low}, {high}]"
        )
    return value


def validate_strategy_class(cls: type) -> type[Strategy]:
    """Check the declarative part of the contract; StrategyError listing what is wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(f"{cls!r} is not a Strategy subclass")
    label = getattr(cls, "name", "") or cls.__name__
    problems: list[str] = []
    if not isinstance(cls.name, str) or not cls.name.strip():
        problems.append("class attribute 'name' must be a non-empty string")
    if cls.category not in CATEGORIES:
        problems.append(
            f"category {cls.category!r} is not one of {', '.join(CATEGORIES)}"
        )
    if not isinstance(cls.params, dict):
        problems.append("'params' must be a dict of defaults")
    if not isinstance(cls.param_space, dict):
        problems.append("'param_space' must be a dict of (low, high) tuples")
    if isinstance(cls.params, dict) and isinstance(cls.param_space, dict):
        for key, bounds in cls.param_space.items():
            if key not in cls.params:
                problems.append(f"param_space key {key!r} has no default in 'params'")
                continue
            if (
                not isinstance(bounds, (tuple, list)) or len(bounds) != 2
                or not all(isinstance(b, numbers.Real) and not isinstance(b, bool)
                           for b in bounds)
                or bounds[0] > bounds[1]
            ):
                problems.append(f"param_space[{key!r}] must be (low, high) with low <= high")
                continue
            try:
                _check_param(label, key, cls.params[key], tuple(bounds))
            except StrategyError as err:
                problems.append(f"default {err}")
    if getattr(cls.generate_signals, "__isabstractmethod__", False):
        problems.append("generate_signals is not implemented")
    if problems:
        raise StrategyError(f"strategy {label!r} breaks the contract: " + "; ".join(problems))
    return cls


def validate_signals(
    raw: Any, candles: pd.DataFrame, name: str, *, allow_all_nan: bool = False
) -> pd.Series:
    """Validate a strategy's raw output and return float64 positions (warm-up NaN -> 0).

    `allow_all_nan` is for the lookahead check, which runs strategies on short
    prefixes where a long warm-up may cover every bar.
    """
    return check_signal_values(signal_values(raw, candles, name), candles, name,
                               allow_all_nan=allow_all_nan)


def signal_values(raw: Any, candles: pd.DataFrame, name: str) -> np.ndarray:
    """The output as float64 values (NaN kept), if it is a numeric Series on the
    candles' index; StrategyError otherwise. The first half of `validate_signals`."""
    if not isinstance(raw, pd.Series):
        raise StrategyError(
            f"strategy {name!r} returned {type(raw).__name__}, expected a pandas Series"
        )
    if len(raw) != len(candles):
        raise StrategyError(
            f"strategy {name!r} returned {len(raw)} values for {len(candles)} candles"
        )
    if not raw.index.equals(candles.index):
        raise StrategyError(
            f"strategy {name!r} returned a Series whose index is not the candles' index"
        )
    if raw.dtype == bool or pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype("float64")
    try:
        return np.asarray(raw.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    except (TypeError, ValueError) as err:
        raise StrategyError(
            f"strategy {name!r} returned non-numeric signals (dtype {raw.dtype})"
        ) from err


def check_signal_values(
    values: np.ndarray, candles: pd.DataFrame, name: str, *, allow_all_nan: bool = False
) -> pd.Series:
    """Positions from float64 values, one per candle: a leading NaN warm-up becomes 0; a
    later NaN, an infinite value or a value outside [-1, 1] is a StrategyError. The second
    half of `validate_signals`, also applied by the pipeline to a sandbox's output."""
    values = np.asarray(values)
    if values.dtype != np.float64 or values.shape != (len(candles),):
        raise StrategyError(
            f"strategy {name!r} returned signals of dtype {values.dtype} and shape "
            f"{values.shape} for {len(candles)} candles"
        )
    nan = np.isnan(values)
    if nan.any():
        if nan.all():
            if not allow_all_nan:
                raise StrategyError(f"strategy {name!r} returned NaN on every bar")
        else:
            first_decided = int(np.argmin(nan))
            late = np.flatnonzero(nan[first_decided:])
            if late.size:
                bar = first_decided + int(late[0])
                raise StrategyError(
                    f"strategy {name!r} returned NaN at bar {bar} ({candles.index[bar]}) "
                    f"after its warm-up; only a leading warm-up may be NaN"
                )
        values = np.where(nan, 0.0, values)
    if np.isinf(values).any():
        bar = int(np.flatnonzero(np.isinf(values))[0])
        raise StrategyError(
            f"strategy {name!r} returned an infinite value at bar {bar} ({candles.index[bar]})"
        )
    outside = np.abs(values) > 1.0 + BOUND_TOLERANCE
    if outside.any():
        bar = int(np.flatnonzero(outside)[0])
        raise StrategyError(
            f"strategy {name!r} returned {float(values[bar])!r} at bar {bar} ({candles.index[bar]}), "
            f"outside [-1, 1]"
        )
    values = np.clip(values, -1.0, 1.0)
    return pd.Series(values, index=candles.index, name=name, dtype="float64")


def signal_fn(strategy_cls: type[Strategy]) -> Callable[[pd.DataFrame, dict], pd.Series]:
    """Adapter for walk-forward code that takes `fn(candles, params) -> positions`."""
    validate_strategy_class(strategy_cls)

    def run(candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        # The base implementation, even if a (trusted) subclass overrides `signals`.
        return Strategy.signals(strategy_cls(params), candles)

    run.__name__ = f"signals_{strategy_cls.name}"
    run.__qualname__ = run.__name__
    run.strategy_cls = strategy_cls  # type: ignore[attr-defined]
    return run


# --- loading ----------------------------------------------------------------------
def code_hash(code: str) -> str:
    """sha256 hex digest of a strategy's source text (UTF-8)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def load_strategy_source(code: str, *, origin: str = "<string>") -> type[Strategy]:
    """Execute TRUSTED or already-checked strategy code and return its Strategy class.

    The code runs in a fresh module namespace; it must define exactly one Strategy
    subclass (imported ones do not count). Never call this on untrusted code in the
    pipeline's own process: `blofin_pipeline.strategies.runner.signal_function` runs
    such code in the kernel sandbox.
    """
    return strategy_class_from(compile_strategy(code, origin=origin), code_hash(code),
                               origin=origin)


def compile_strategy(code: str, *, origin: str = "<string>") -> types.CodeType:
    """The compiled module of a strategy file; StrategyError on a syntax error."""
    try:
        return compile(code, origin, "exec")
    except SyntaxError as err:
        raise StrategyError(
            f"strategy source {origin}: syntax error at line {err.lineno}: {err.msg}"
        ) from err
    except ValueError as err:  # null bytes
        raise StrategyError(f"strategy source {origin} cannot be compiled: {err}") from err


def strategy_class_from(compiled: types.CodeType, digest: str, *,
                        origin: str = "<string>") -> type[Strategy]:
    """Run a compiled strategy module in a fresh namespace; its one Strategy class."""
    module_name = f"blofin_strategy_{digest[:16]}"
    module = types.ModuleType(module_name)
    module.__file__ = origin
    try:
        exec(compiled, module.__dict__)  # noqa: S102 - trusted, or inside the sandbox
    except (Exception, SystemExit) as err:
        raise StrategyError(
            f"strategy source {origin} failed to load: {type(err).__name__}: {err}"
        ) from err
    found = [
        obj for obj in module.__dict__.values()
        if isinstance(obj, type) and issubclass(obj, Strategy) and obj is not Strategy
        and obj.__module__ == module_name
    ]
    if len(found) != 1:
        names = ", ".join(cls.__name__ for cls in found) or "none"
        raise StrategyError(
            f"strategy source {origin} must define exactly one Strategy subclass, "
            f"found {len(found)} ({names})"
        )
    cls = validate_strategy_class(found[0])
    cls.source_hash = digest  # type: ignore[attr-defined]
    log.debug("loaded strategy %r from %s", cls.name, origin)
    return cls


def load_strategy_file(path: str | Path) -> type[Strategy]:
    """Read and load a strategy file (trusted or already checked)."""
    path = Path(path)
    try:
        code = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StrategyError(f"strategy file {str(path)!r} could not be read: {err}") from err
    return load_strategy_source(code, origin=str(path))
