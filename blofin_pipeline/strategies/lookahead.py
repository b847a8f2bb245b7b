"""Lookahead check: a signal at bar t may only depend on bars up to and including t.

Signals computed on the candles cut after bar t must equal the full-data signals on
every bar up to t. The check runs the strategy on many such prefixes (sampled, always
including the last bars) and names the first bar where the two differ. It catches
``shift(-1)``, centred rolling windows, ``bfill``, normalising by the whole series' max
or mean, and non-deterministic output. For untrusted code the whole check runs inside
the sandbox child, so one process does every truncation.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies.base import Strategy, validate_signals

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 30
LATE_BARS = 5  # the last cuts are always checked: peeking one bar ahead shows there
TOLERANCE = 1e-9


@dataclass(frozen=True)
class LookaheadReport:
    """Outcome of a lookahead check; `first_bad_bar` is a row position in the candles."""

    ok: bool
    first_bad_bar: int | None = None
    first_bad_ts: str | None = None
    cut_bar: int | None = None
    detail: str = ""
    checked_bars: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_signal_function(
    strategy: Any, params: dict | None
) -> tuple[str, Callable[[pd.DataFrame], Any]]:
    """(name, fn(candles) -> raw output) for a Strategy class, instance or function."""
    strategy = getattr(strategy, "strategy_cls", strategy)  # a signal_fn adapter
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        instance = strategy(params)
        return strategy.name, instance.generate_signals
    if isinstance(strategy, Strategy):
        return strategy.name, strategy.generate_signals
    if callable(strategy):
        name = getattr(strategy, "__name__", "<function>")
        if params is None:
            return name, strategy
        return name, lambda candles: strategy(candles, params)
    raise TypeError(f"expected a Strategy class, instance or function, got {strategy!r}")


def _lenient_values(raw: Any, candles: pd.DataFrame, name: str, cut: int) -> np.ndarray:
    """Output on a prefix as float64 with NaN -> 0 (a short prefix may be all warm-up)."""
    if not isinstance(raw, pd.Series) or len(raw) != len(candles) or not raw.index.equals(
        candles.index
    ):
        raise StrategyError(
            f"strategy {name!r} returned no Series on the candles' index when the data "
            f"was cut at bar {cut}"
        )
    values = raw.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), 0.0, values)


def sample_cuts(
    n_bars: int, *, n_samples: int = DEFAULT_SAMPLES, seed: int = 0, min_history: int
) -> list[int]:
    """Sorted cut positions t in [min_history, n_bars - 2]; always the last LATE_BARS."""
    last = n_bars - 2  # cutting at n_bars - 1 is the full frame
    if last < min_history:
        return []
    candidates = np.arange(min_history, last + 1)
    late = candidates[-LATE_BARS:]
    rest = candidates[:-LATE_BARS]
    n_rest = max(0, min(n_samples - len(late), len(rest)))
    rng = np.random.default_rng(seed)
    picked = rng.choice(rest, size=n_rest, replace=False) if n_rest else np.array([], int)
    return sorted(int(t) for t in np.concatenate([picked, late]))


def default_min_history(n_bars: int) -> int:
    return int(min(max(n_bars - 2, 0), max(100, n_bars // 4)))


def check_lookahead(
    strategy: Any,
    candles: pd.DataFrame,
    *,
    params: dict | None = None,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_history: int | None = None,
    tolerance: float = TOLERANCE,
) -> LookaheadReport:
    """Compare signals on data cut at sampled bars t with the full-data signals up to t.

    `strategy` is a Strategy class (built with `params`), an instance, a `signal_fn`
    adapter, or a function `fn(candles) -> Series` (`fn(candles, params)` when params
    are given). Raises StrategyError when the strategy fails on the full data.
    """
    name, fn = _as_signal_function(strategy, params)
    n_bars = len(candles)
    full = validate_signals(_call(fn, candles, name, None), candles, name).to_numpy()
    again = validate_signals(_call(fn, candles, name, None), candles, name).to_numpy()
    unstable = _nondeterminism(full, again, candles, tolerance)
    if unstable is not None:
        return unstable
    if min_history is None:
        min_history = default_min_history(n_bars)
    cuts = sample_cuts(n_bars, n_samples=n_samples, seed=seed, min_history=min_history)
    if not cuts:
        # Nothing was compared, so nothing can be vouched for.
        return LookaheadReport(
            ok=False,
            detail=(f"not checked: {n_bars} bars leave no cut point after a minimum "
                    f"history of {min_history} bars"),
        )
    worst: tuple[int, int, float, float] | None = None  # (bar, cut, full, cut value)
    for t in cuts:
        prefix = candles.iloc[: t + 1]
        try:
            values = _lenient_values(_call(fn, prefix, name, t), prefix, name, t)
        except StrategyError as err:
            return LookaheadReport(
                ok=False, first_bad_bar=t, first_bad_ts=str(candles.index[t]), cut_bar=t,
                detail=f"failed on data cut at bar {t} ({candles.index[t]}): {err}",
                checked_bars=cuts,
            )
        bad = np.abs(values - full[: t + 1]) > tolerance
        if bad.any():
            bar = int(np.flatnonzero(bad)[0])
            if worst is None or bar < worst[0]:
                worst = (bar, t, float(full[bar]), float(values[bar]))
    if worst is None:
        return LookaheadReport(
            ok=True, detail=f"signals on {len(cuts)} cut points equal the full-data signals",
            checked_bars=cuts,
        )
    return _lookahead_found(name, candles, worst, cuts)


def _nondeterminism(full: np.ndarray, again: np.ndarray, candles: pd.DataFrame,
                    tolerance: float) -> LookaheadReport | None:
    """A failed report if two runs on the same data differ, else None."""
    diff = np.abs(full - again) > tolerance
    if not diff.any():
        return None
    bar = int(np.flatnonzero(diff)[0])
    return LookaheadReport(
        ok=False, first_bad_bar=bar, first_bad_ts=str(candles.index[bar]), cut_bar=None,
        detail=(f"non-deterministic: two runs on the same data differ at bar {bar} "
                f"({candles.index[bar]})"),
    )


def _lookahead_found(name: str, candles: pd.DataFrame, worst: tuple[int, int, float, float],
                     cuts: list[int]) -> LookaheadReport:
    bar, t, full_value, cut_value = worst
    detail = (
        f"the signal at bar {bar} ({candles.index[bar]}) is {full_value:.6g} on "
        f"the full data but {cut_value:.6g} on data cut at bar {t} ({candles.index[t]}); "
        f"it depends on later bars"
    )
    log.info("strategy %r: %s", name, detail)
    return LookaheadReport(
        ok=False, first_bad_bar=bar, first_bad_ts=str(candles.index[bar]), cut_bar=t,
        detail=detail, checked_bars=cuts,
    )


def _call(fn: Callable[[pd.DataFrame], Any], candles: pd.DataFrame, name: str,
          cut: int | None) -> Any:
    # Each run gets its own copy, so a strategy that writes into `candles` cannot
    # leak values from the full frame into a prefix or the other way round.
    try:
        return fn(candles.copy(deep=False))
    except StrategyError:
        raise
    except Exception as err:  # untrusted code: its failure is the strategy's error
        where = "" if cut is None else f" on data cut at bar {cut}"
        raise StrategyError(
            f"strategy {name!r} failed{where}: {type(err).__name__}: {err}"
        ) from err
