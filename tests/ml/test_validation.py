from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.ml.validation import purged_walk_forward_splits


@settings(max_examples=200, deadline=None)
@given(
    n_rows=st.integers(200, 5000),
    n_splits=st.integers(1, 6),
    horizon=st.integers(1, 30),
)
def test_no_train_bar_within_horizon_of_a_test_bar(n_rows, n_splits, horizon):
    try:
        folds = purged_walk_forward_splits(n_rows, n_splits, horizon, min_train=20)
    except ConfigError:
        assert n_rows // (n_splits + 1) - horizon < 20
        return
    assert len(folds) == n_splits
    previous_end = None
    for fold in folds:
        distance = np.abs(fold.test[:, None] - fold.train[None, :]).min()
        assert distance > horizon
        # Walk-forward: only the past trains, and all of the past except the purge.
        assert fold.train.max() < fold.test.min()
        np.testing.assert_array_equal(fold.train, np.arange(fold.test.min() - horizon))
        assert np.all(np.diff(fold.test) == 1)
        if previous_end is not None:
            assert fold.test.min() == previous_end + 1
        previous_end = fold.test.max()
    assert previous_end == n_rows - 1


def test_hand_checked_folds():
    folds = purged_walk_forward_splits(10 * 100, 4, 3, min_train=50)
    assert [(f.train.max(), f.test.min(), f.test.max()) for f in folds] == [
        (196, 200, 399), (396, 400, 599), (596, 600, 799), (796, 800, 999),
    ]


def test_too_few_rows_and_bad_arguments():
    with pytest.raises(ConfigError, match="too few"):
        purged_walk_forward_splits(300, 4, 5, min_train=100)
    with pytest.raises(ConfigError):
        purged_walk_forward_splits(1000, 0, 1)
    with pytest.raises(ConfigError):
        purged_walk_forward_splits(1000, 3, 0)
