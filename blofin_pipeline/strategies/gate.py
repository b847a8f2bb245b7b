"""The lookahead gate: every parameter set that will be evaluated is checked.

`run_gate` checks, on one candles frame (the DAG hands it one symbol's scoring window):

* the **defaults**: the sampled check (`lookahead.check_lookahead`, 30 cuts, every bar of
  each prefix, two full runs for non-determinism), then the dense checks
  (`lookahead.dense_check`): every bar of the last `DENSE_BARS` (2301) bars against its
  own prefix, so a peek on 0.2% of bars escapes with probability 0.998^2301 < 1%, and
  every bar of the first `WARMUP_BARS` (720) bars, where a ``bfill()`` of an indicator's
  warm-up shows;
* every **other set** the walk-forward evaluates or may evaluate: the exact walk-forward
  candidate samples (`backtest.walkforward.sample_candidates` with the version's seed
  `backtest.scoring.candidate_seed(name, version)` and the run's `wf_candidates`) and the
  corners of `param_space` (all of them up to `MAX_CORNERS`, else that many seeded ones,
  always including all-low and all-high): the sampled check with `SET_SAMPLES` cuts. A
  parameter that turns the strategy into a peeker (a negative lag, a centred window)
  peeks on nearly every bar, which any cut shows; sparse peeks are code paths, caught by
  the dense check of the defaults.

A set chosen later (e.g. by the tuner) is checked with `check_params` before it is scored.
For untrusted code every check runs in the strategy's sandbox child, each batch of cuts
in one request. A frame too short for the dense checks is a DataValidationError naming
the bars needed; `gate_frame` picks a long enough frame and says which.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from blofin_pipeline.backtest.walkforward import sample_candidates
from blofin_pipeline.exceptions import DataValidationError, StrategyError
from blofin_pipeline.strategies.lookahead import (
    DEFAULT_SAMPLES,
    DENSE_BARS,
    DENSE_HISTORY,
    TOLERANCE,
    WARMUP_BARS,
    LookaheadReport,
    Target,
    check_lookahead,
    dense_check,
)
from blofin_pipeline.strategies.testdata import check_candles

log = logging.getLogger(__name__)

MAX_CORNERS = 16
SET_SAMPLES = 10   # cuts per non-default set (the last LATE_BARS and 5 sampled)


@dataclass(frozen=True)
class GateSpans:
    """How much the dense checks cover (the defaults are the ones the guarantee needs)."""

    dense_bars: int = DENSE_BARS
    history: int = DENSE_HISTORY
    warmup_bars: int = WARMUP_BARS

    @property
    def required_bars(self) -> int:
        return max(self.dense_bars + self.history + 1, self.warmup_bars + 1)


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict: `lookahead` is the first failed check (or the defaults'
    sampled check when all passed); `sets` every (label, params) checked."""

    ok: bool
    lookahead: LookaheadReport
    failed_set: str | None = None
    sets: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    spans: GateSpans = GateSpans()

    @property
    def detail(self) -> str:
        return self.lookahead.detail

    def to_dict(self) -> dict[str, Any]:
        return {**self.lookahead.to_dict(), "ok": self.ok, "failed_set": self.failed_set,
                "sets": [{"set": label, "params": params} for label, params in self.sets],
                "runs": self.runs, "seconds": round(self.seconds, 3),
                "dense_bars": self.spans.dense_bars, "dense_history": self.spans.history,
                "warmup_bars": self.spans.warmup_bars}


def corner_sets(defaults: Mapping[str, Any], param_space: Mapping[str, tuple], *,
                limit: int = MAX_CORNERS, seed: int = 0) -> list[dict[str, Any]]:
    """Corners of `param_space` (other parameters at their defaults): all of them when
    there are at most `limit`, else all-low, all-high and seeded random others."""
    keys = list(param_space)
    if not keys:
        return []
    if 2 ** len(keys) <= limit:
        patterns = list(itertools.product((0, 1), repeat=len(keys)))
    else:
        rng = np.random.default_rng(seed)
        patterns = [(0,) * len(keys), (1,) * len(keys)]
        for _ in range(20 * limit):
            if len(patterns) >= limit:
                break
            bits = tuple(int(b) for b in rng.integers(0, 2, len(keys)))
            if bits not in patterns:
                patterns.append(bits)
    return [{**defaults, **{k: param_space[k][bit] for k, bit in zip(keys, bits)}}
            for bits in patterns]


def parameter_sets(defaults: Mapping[str, Any], param_space: Mapping[str, tuple], *, seed: int,
                   n_candidates: int, max_corners: int = MAX_CORNERS
                   ) -> list[tuple[str, dict[str, Any]]]:
    """(label, params) of every set to check, defaults first, each set once: the exact
    walk-forward candidates (`sample_candidates` with `seed`, `n_candidates`), then the
    corners. ValueError on a malformed `param_space`."""
    walk = sample_candidates(defaults, param_space, n_candidates, seed)
    labelled = [("defaults", walk[0])]
    labelled += [(f"walk-forward candidate {i}", c) for i, c in enumerate(walk[1:], 1)]
    labelled += [(f"corner {i}", c) for i, c in
                 enumerate(corner_sets(defaults, param_space, limit=max_corners, seed=seed), 1)]
    out, seen = [], set()
    for label, params in labelled:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in seen:
            seen.add(key)
            out.append((label, dict(params)))
    return out


def require_frame(candles: pd.DataFrame, spans: GateSpans = GateSpans()) -> None:
    """DataValidationError naming the problem when the frame is too short for the gate."""
    if len(candles) < spans.required_bars:
        raise DataValidationError(
            f"the lookahead gate needs a frame of at least {spans.required_bars} bars (a dense "
            f"check of the last {spans.dense_bars} bars, each prefix starting {spans.history} "
            f"bars before them, and of the first {spans.warmup_bars} bars); it was given "
            f"{len(candles)}: use a longer window, or `gate_frame`")


def gate_frame(candles: pd.DataFrame, spans: GateSpans = GateSpans()) -> tuple[pd.DataFrame, str]:
    """(frame, description) for the gate: `candles` when long enough, else the
    deterministic check frame (`testdata.check_candles`) of the bars needed."""
    if len(candles) >= spans.required_bars:
        return candles, f"the window's {len(candles)} bars"
    note = (f"the deterministic check frame of {spans.required_bars} bars: the window holds "
            f"only {len(candles)} bars, fewer than the gate needs")
    log.warning("lookahead gate on %s", note)
    return check_candles(spans.required_bars), note


def run_gate(strategy: Any, candles: pd.DataFrame, *, seed: int, n_candidates: int,
             defaults: Mapping[str, Any] | None = None, param_space: Mapping[str, tuple] | None = None,
             n_samples: int = DEFAULT_SAMPLES, set_samples: int = SET_SAMPLES, cut_seed: int = 0,
             max_corners: int = MAX_CORNERS, spans: GateSpans = GateSpans(),
             tolerance: float = TOLERANCE) -> GateReport:
    """Every check of the gate on `candles`; stops at the first failure.

    `strategy` is a signal function (`runner.signal_function`, sandboxed for untrusted
    code), a Strategy class, or a function with explicit `defaults` and `param_space`.
    `seed` and `n_candidates` are the walk-forward's (`candidate_seed`, `wf_candidates`).
    """
    require_frame(candles, spans)
    started = time.monotonic()
    target = Target(strategy)
    defaults = dict(getattr(strategy, "params", {}) if defaults is None else defaults)
    space = dict(getattr(strategy, "param_space", {}) if param_space is None else param_space)
    try:
        sets = parameter_sets(defaults, space, seed=seed, n_candidates=n_candidates,
                              max_corners=max_corners)
    except ValueError as err:
        return GateReport(ok=False, lookahead=LookaheadReport(ok=False, detail=str(err)),
                          failed_set="param_space", spans=spans)

    def done(report: LookaheadReport, label: str | None) -> GateReport:
        return GateReport(ok=report.ok, lookahead=report, failed_set=None if report.ok else label,
                          sets=sets, runs=target.runs, seconds=time.monotonic() - started, spans=spans)

    checks = [("defaults", lambda: _sampled(target, candles, sets[0][1], n_samples, cut_seed, True,
                                             tolerance))]
    checks += [(label, lambda p=params: _sampled(target, candles, p, set_samples, cut_seed, False,
                                                  tolerance)) for label, params in sets[1:]]
    checks += [("defaults", lambda s=span: dense_check(target.strategy, candles, span=s, params=sets[0][1],
                                                       dense_bars=spans.dense_bars, history=spans.history,
                                                       warmup_bars=spans.warmup_bars, tolerance=tolerance,
                                                       target=target))
               for span in ("recent", "warm-up")]
    first = None
    for label, check in checks:
        report = check()
        first = first or report
        if not report.ok:
            return done(report, label)
    return done(first, None)


def _sampled(target: Target, candles: pd.DataFrame, params: dict[str, Any], n_samples: int,
             seed: int, repeat: bool, tolerance: float) -> LookaheadReport:
    try:
        return check_lookahead(target.strategy, candles, params=params, n_samples=n_samples,
                               seed=seed, repeat=repeat, tolerance=tolerance, target=target)
    except StrategyError as err:
        return LookaheadReport(ok=False, params=params, detail=f"failed on the full data: {err}")


def check_params(strategy: Any, params: Mapping[str, Any], candles: pd.DataFrame, *,
                 n_samples: int = SET_SAMPLES, seed: int = 0,
                 tolerance: float = TOLERANCE) -> LookaheadReport:
    """Check a parameter set chosen after the gate ran (e.g. by the tuner) before it is
    scored: the sampled check, as for every non-default set (a parameter-made peek shows
    on nearly every bar). Pass the version's signal function (`runner.signal_function`):
    for untrusted code the cuts run in its sandbox child, in one request. A failure of
    the strategy is a failed report, never an exception."""
    return _sampled(Target(strategy), candles, dict(params), n_samples, seed, False, tolerance)
