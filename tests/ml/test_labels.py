from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.ml.labels import DEFAULT_BAND, make_labels

INDEX = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC", name="ts")
CLOSE = pd.Series([100.0, 101.0, 100.9, 102.0, 102.0, 99.0], index=INDEX)


def test_default_band_is_the_round_trip_fee():
    assert DEFAULT_BAND == pytest.approx(2 * 0.0006)


def test_one_bar_labels_with_band():
    labels = make_labels(CLOSE, horizon=1, band=0.005)
    # moves: +0.995 %, -0.099 % (in band), +1.084 %, 0 (in band), -2.985 %, unknown
    np.testing.assert_array_equal(labels["label"].to_numpy(), [1.0, np.nan, 1.0, np.nan, 0.0, np.nan])
    assert labels["move"].iloc[0] == pytest.approx(np.log(1.01))
    assert np.isnan(labels["move"].iloc[-1])


def test_horizon_sums_the_next_bars():
    labels = make_labels(CLOSE, horizon=2, band=0.005)
    # close[t] -> close[t+2]: +0.9 %, +0.99 %, +1.09 %, -2.94 %; the last two bars unknown
    np.testing.assert_array_equal(labels["label"].to_numpy(), [1.0, 1.0, 1.0, 0.0, np.nan, np.nan])
    bar_moves = np.log(CLOSE).diff().shift(-1)
    assert labels["move"].iloc[1] == pytest.approx(bar_moves.iloc[1] + bar_moves.iloc[2])


def test_label_uses_only_future_closes():
    """Changing close[t+h+1] leaves the label of bar t alone; changing close[t+h] can flip it."""
    base = make_labels(CLOSE, horizon=2, band=0.0)
    later = CLOSE.copy()
    later.iloc[3] = 50.0
    assert make_labels(later, horizon=2, band=0.0)["label"].iloc[0] == base["label"].iloc[0]
    assert make_labels(later, horizon=2, band=0.0)["label"].iloc[1] == 0.0


def test_zero_band_leaves_only_flat_moves_unlabelled():
    labels = make_labels(CLOSE, horizon=1, band=0.0)
    np.testing.assert_array_equal(labels["label"].to_numpy(), [1.0, 0.0, 1.0, np.nan, 0.0, np.nan])


@pytest.mark.parametrize(("horizon", "band"), [(0, 0.001), (1, -0.1), (1, float("nan"))])
def test_bad_arguments_raise(horizon, band):
    with pytest.raises(ConfigError):
        make_labels(CLOSE, horizon=horizon, band=band)
