"""Lookahead checks: a signal at bar t may only depend on bars up to and including t.

A strategy run on the candles cut after bar t must give, on every bar up to t, the
signal it gives on the longer frame. Two checks compare the two:

* `check_lookahead` (sampled): cuts at a few sampled bars (always the last ones), every
  bar of each prefix compared. A peek on most bars (``shift(-1)``, a parameter that
  becomes a negative lag, centred windows, whole-series statistics) shows at any cut.
* `dense_check` (every bar of a span): a cut at every bar t of the span, the prefix's
  last bar compared (a bar that reads any later bar differs there). ``span="recent"``
  covers the last `DENSE_BARS` bars, each prefix starting `DENSE_HISTORY` bars before
  the span (the reference is the run on the same start, so the comparison is exact);
  ``span="warm-up"`` covers the first `WARMUP_BARS` bars (a ``bfill()`` of an indicator's
  warm-up). A peek on a fraction p of bars escapes L dense bars with probability
  (1 - p)^L: `DENSE_BARS` makes that <= 1% for p = 0.2%.

Every batch of cuts runs in one call: in the sandbox child for untrusted code
(`runner.SandboxedStrategy.prefixes`), in-process for built-ins and plain functions.
Only numbers come back; the comparison is done here. `gate.run_gate` decides which
parameter sets get which check.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError, StrategyError
from blofin_pipeline.strategies.base import Strategy, check_signal_values, signal_values
from blofin_pipeline.strategies.prefixes import prefix_outputs

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 30
LATE_BARS = 5  # the last cuts are always checked: peeking one bar ahead shows there
TOLERANCE = 1e-9
PEEK_RATE = 0.002          # a sparse peek on 0.2% of bars...
CATCH_PROBABILITY = 0.99   # ...is caught with at least this probability


def dense_bars_for(peek_rate: float, probability: float) -> int:
    """The L with 1 - (1 - peek_rate)^L >= probability."""
    return math.ceil(math.log(1.0 - probability) / math.log(1.0 - peek_rate))


DENSE_BARS = dense_bars_for(PEEK_RATE, CATCH_PROBABILITY)  # 2301
DENSE_HISTORY = 720   # bars before the dense span that every prefix starts with (30 days of 1H)
WARMUP_BARS = 720     # the first bars, checked densely for back-filled warm-ups


@dataclass(frozen=True)
class LookaheadReport:
    """Outcome of a lookahead check; `first_bad_bar` is a row position in the candles."""

    ok: bool
    first_bad_bar: int | None = None
    first_bad_ts: str | None = None
    cut_bar: int | None = None
    detail: str = ""
    checked_bars: list[int] = field(default_factory=list)  # the sampled cuts
    check: str = "sampled"  # sampled | dense recent | dense warm-up
    params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Target:
    """The strategy under check: raw values (NaN kept) on the whole frame, and batches of
    prefixes; `strategy` is a signal function (`runner.signal_function`: sandboxed for
    untrusted code), a Strategy class or instance, or ``fn(candles[, params])``."""

    def __init__(self, strategy: Any) -> None:
        self.batched = callable(getattr(strategy, "prefixes", None))
        self.strategy = strategy
        self.name = str(getattr(strategy, "name", None) or getattr(strategy, "__name__", "<function>"))
        self.runs = 0

    def full(self, candles: pd.DataFrame, params: dict | None) -> np.ndarray:
        self.runs += 1
        if self.batched:
            return self.strategy.raw(candles, params).to_numpy(dtype="float64")
        return self._values(candles, params)

    def prefixes(self, candles: pd.DataFrame, params: dict | None, start: int,
                 cuts: np.ndarray, *, last_only: bool) -> np.ndarray:
        self.runs += len(cuts)
        if self.batched:
            return self.strategy.prefixes(candles, params, start, cuts, last_only=last_only)
        return prefix_outputs(lambda frame: self._values(frame, params), candles, start, cuts,
                              last_only=last_only)

    def _values(self, candles: pd.DataFrame, params: dict | None) -> np.ndarray:
        fn = _bound(self.strategy, params)
        try:
            raw = fn(candles.copy(deep=False))
        except StrategyError:
            raise
        except Exception as err:  # untrusted code: its failure is the strategy's error
            raise StrategyError(f"strategy {self.name!r} failed: {type(err).__name__}: {err}") from err
        return signal_values(raw, candles, self.name)


def _bound(strategy: Any, params: dict | None) -> Callable[[pd.DataFrame], Any]:
    strategy = getattr(strategy, "strategy_cls", strategy)  # a signal_fn adapter
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy(params).generate_signals
    if isinstance(strategy, Strategy):
        return strategy.generate_signals
    if callable(strategy):
        return strategy if params is None else (lambda candles: strategy(candles, params))
    raise TypeError(f"expected a Strategy class, instance or function, got {strategy!r}")


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
    repeat: bool = True,
    target: Target | None = None,
) -> LookaheadReport:
    """Sampled check: signals on data cut at sampled bars t against the full-data signals
    up to t, every bar of each prefix. With `repeat`, the full data is run twice and a
    difference is reported as non-determinism. Raises StrategyError when the strategy
    fails on the full data (or returns invalid signals there).
    """
    target = target or Target(strategy)
    name, n_bars = target.name, len(candles)
    full = check_signal_values(target.full(candles, params), candles, name).to_numpy()
    if repeat:
        again = check_signal_values(target.full(candles, params), candles, name).to_numpy()
        unstable = _nondeterminism(full, again, candles, tolerance, params)
        if unstable is not None:
            return unstable
    if min_history is None:
        min_history = default_min_history(n_bars)
    cuts = sample_cuts(n_bars, n_samples=n_samples, seed=seed, min_history=min_history)
    if not cuts:  # nothing compared, so nothing can be vouched for
        return LookaheadReport(ok=False, params=params, detail=(
            f"not checked: {n_bars} bars leave no cut point after a minimum history of "
            f"{min_history} bars"))
    try:
        values = target.prefixes(candles, params, 0, np.array(cuts), last_only=False)
    except StrategyError as err:
        return LookaheadReport(ok=False, detail=f"failed {err}", checked_bars=cuts, params=params)
    values = np.where(np.isnan(values), 0.0, values)
    worst: tuple[int, int, float, float] | None = None  # (bar, cut, full, cut value)
    offset = 0
    for t in cuts:
        bad = np.abs(values[offset: offset + t + 1] - full[: t + 1]) > tolerance
        if bad.any():
            bar = int(np.flatnonzero(bad)[0])
            if worst is None or bar < worst[0]:
                worst = (bar, t, float(full[bar]), float(values[offset + bar]))
        offset += t + 1
    if worst is None:
        return LookaheadReport(ok=True, checked_bars=cuts, params=params, detail=(
            f"signals on {len(cuts)} cut points equal the full-data signals"))
    return _lookahead_found(name, candles, worst, "sampled", params, cuts)


def dense_span(n_bars: int, span: str, *, dense_bars: int = DENSE_BARS,
               history: int = DENSE_HISTORY, warmup_bars: int = WARMUP_BARS
               ) -> tuple[int, np.ndarray]:
    """(prefix start, cuts) of a dense check; DataValidationError if the frame is short."""
    if span == "recent":
        need, start = dense_bars + history + 1, n_bars - 1 - dense_bars - history
        cuts = np.arange(n_bars - 1 - dense_bars, n_bars - 1)
    elif span == "warm-up":
        need, start, cuts = warmup_bars + 1, 0, np.arange(0, warmup_bars)
    else:
        raise ValueError(f"span must be 'recent' or 'warm-up', got {span!r}")
    if n_bars < need:
        raise DataValidationError(
            f"the lookahead gate needs at least {need} bars for its dense {span} check "
            f"({_span_text(span, dense_bars, history, warmup_bars)}); the frame has {n_bars}")
    return start, cuts


def _span_text(span: str, dense_bars: int, history: int, warmup_bars: int) -> str:
    if span == "recent":
        return (f"every bar of the last {dense_bars} bars, each on a prefix starting "
                f"{history} bars before them, plus the last bar that has no later one")
    return f"every bar of the first {warmup_bars} bars, plus one later bar"


def dense_check(
    strategy: Any,
    candles: pd.DataFrame,
    *,
    span: str,
    params: dict | None = None,
    dense_bars: int = DENSE_BARS,
    history: int = DENSE_HISTORY,
    warmup_bars: int = WARMUP_BARS,
    tolerance: float = TOLERANCE,
    target: Target | None = None,
) -> LookaheadReport:
    """Dense check: a cut at every bar t of the span, the value at t on the prefix
    against the value at t on the longer frame with the same first bar."""
    target = target or Target(strategy)
    start, cuts = dense_span(len(candles), span, dense_bars=dense_bars, history=history,
                             warmup_bars=warmup_bars)
    check = f"dense {span}"
    try:
        reference = target.prefixes(candles, params, start, np.array([len(candles) - 1]),
                                    last_only=False)
        values = target.prefixes(candles, params, start, cuts, last_only=True)
    except StrategyError as err:
        return LookaheadReport(ok=False, detail=f"failed {err} ({check} check)", check=check,
                               params=params)
    reference = np.where(np.isnan(reference), 0.0, reference)[cuts - start]
    values = np.where(np.isnan(values), 0.0, values)
    bad = np.flatnonzero(np.abs(values - reference) > tolerance)
    if bad.size == 0:
        return LookaheadReport(ok=True, check=check, params=params, detail=(
            f"every one of bars {int(cuts[0])}..{int(cuts[-1])} equals its value on its own prefix"))
    t = int(cuts[bad[0]])
    found = _lookahead_found(target.name, candles, (t, t, float(reference[bad[0]]), float(values[bad[0]])),
                             check, params, [])
    return LookaheadReport(**{**found.to_dict(), "detail": (
        f"{found.detail} ({check} check: {bad.size} of {cuts.size} bars differ)")})


def _nondeterminism(full: np.ndarray, again: np.ndarray, candles: pd.DataFrame,
                    tolerance: float, params: dict | None) -> LookaheadReport | None:
    """A failed report if two runs on the same data differ, else None."""
    diff = np.abs(full - again) > tolerance
    if not diff.any():
        return None
    bar = int(np.flatnonzero(diff)[0])
    return LookaheadReport(
        ok=False, first_bad_bar=bar, first_bad_ts=str(candles.index[bar]), cut_bar=None,
        params=params, detail=(f"non-deterministic: two runs on the same data differ at bar "
                               f"{bar} ({candles.index[bar]})"),
    )


def _lookahead_found(name: str, candles: pd.DataFrame, worst: tuple[int, int, float, float],
                     check: str, params: dict | None, cuts: list[int]) -> LookaheadReport:
    bar, t, full_value, cut_value = worst
    where = "" if params is None else f" with parameters {params}"
    detail = (
        f"the signal at bar {bar} ({candles.index[bar]}) is {full_value:.6g} on "
        f"the full data but {cut_value:.6g} on data cut at bar {t} ({candles.index[t]}){where}; "
        f"it depends on later bars"
    )
    log.info("strategy %r: %s", name, detail)
    return LookaheadReport(
        ok=False, first_bad_bar=bar, first_bad_ts=str(candles.index[bar]), cut_bar=t,
        detail=detail, checked_bars=cuts, check=check, params=params,
    )
