"""Purged walk-forward splits over consecutive bars.

The data are cut into ``n_splits + 1`` consecutive blocks; fold k tests on block k+1
and trains on every earlier bar except the last ``horizon`` bars before the test
block (the purge): a training label at bar i uses bars up to i + horizon, so keeping
``i + horizon < test_start`` means no training label overlaps a test bar. Training
only ever happens before testing, so no embargo after the test block is needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blofin_pipeline.exceptions import ConfigError


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: row positions to train on and to test on."""

    train: np.ndarray
    test: np.ndarray


def purged_walk_forward_splits(
    n_rows: int, n_splits: int, horizon: int, *, min_train: int = 100
) -> list[Fold]:
    """Expanding-window folds over ``n_rows`` consecutive bars, purged by ``horizon``.

    Every train position i of a fold satisfies ``i + horizon < min(test)``, so the
    distance from any train bar to any test bar is more than ``horizon`` bars. Test
    blocks are consecutive and together cover the bars after the first block.
    """
    if n_splits < 1:
        raise ConfigError(f"n_splits must be >= 1, got {n_splits!r}")
    if horizon < 1:
        raise ConfigError(f"horizon must be >= 1 bar, got {horizon!r}")
    block = n_rows // (n_splits + 1)
    if block - horizon < min_train:
        raise ConfigError(
            f"{n_rows} rows are too few for {n_splits} purged folds with horizon {horizon}"
            f" (first fold would train on {block - horizon} < {min_train} rows)"
        )
    folds = []
    for k in range(n_splits):
        test_start = (k + 1) * block
        test_end = n_rows if k == n_splits - 1 else (k + 2) * block
        folds.append(Fold(train=np.arange(0, test_start - horizon), test=np.arange(test_start, test_end)))
    return folds
