"""Run a strategy on many prefixes of one candles frame, in one process, in one call.

The lookahead gate compares a strategy's output on a frame cut after bar t with its
output on the longer frame. `prefix_outputs` does every cut of a batch in a loop, so a
sandboxed strategy answers a whole batch (thousands of cuts) in one request to its
child instead of one round trip per cut. The child and the pipeline (for shipped
built-ins and plain functions) run this same function; only numbers come back, and the
pipeline compares them itself.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError

# run(frame) -> float64 values, one per row of `frame` (NaN kept)
FrameRun = Callable[[pd.DataFrame], np.ndarray]


def check_cuts(n_bars: int, start: int, cuts: np.ndarray) -> np.ndarray:
    """`cuts` as int64 positions in [start, n_bars), or ValueError naming the bad one."""
    cuts = np.asarray(cuts, dtype=np.int64)
    if cuts.ndim != 1:
        raise ValueError("cuts must be a 1-D list of bar positions")
    if not 0 <= start < n_bars:
        raise ValueError(f"prefix start {start} is not a bar of a {n_bars}-bar frame")
    bad = cuts[(cuts < start) | (cuts >= n_bars)]
    if bad.size:
        raise ValueError(f"cut {int(bad[0])} is outside bars {start}..{n_bars - 1}")
    return cuts


def prefix_outputs(run: FrameRun, candles: pd.DataFrame, start: int, cuts: np.ndarray,
                   *, last_only: bool) -> np.ndarray:
    """Outputs on the frames ``candles[start : t + 1]`` for each cut t, concatenated.

    With `last_only`, only each frame's last value (the one at bar t); otherwise every
    value of each frame. Each run gets its own copy of its frame, so a strategy that
    writes into its candles cannot pass anything to the next run. A failure is a
    StrategyError naming the cut.
    """
    cuts = check_cuts(len(candles), start, cuts)
    out: list[np.ndarray] = []
    for t in cuts.tolist():
        frame = candles.iloc[start: t + 1].copy()
        try:
            values = run(frame)
        except StrategyError as err:
            raise StrategyError(f"on data cut at bar {t} ({candles.index[t]}): {err}") from err
        if values.shape != (len(frame),):
            raise StrategyError(f"returned {values.shape} values for {len(frame)} candles "
                                f"on data cut at bar {t}")
        out.append(values[-1:] if last_only else values)
    return np.concatenate(out) if out else np.empty(0, dtype=np.float64)


def output_size(start: int, cuts: np.ndarray, *, last_only: bool) -> int:
    """How many values `prefix_outputs` returns for these cuts."""
    cuts = np.asarray(cuts, dtype=np.int64)
    return int(cuts.size if last_only else (cuts - start + 1).sum())
