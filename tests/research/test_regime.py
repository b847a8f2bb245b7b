"""Regime detection on hand-made frames: a clean uptrend, a flat oscillation, a vol spike."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.research.regime import (
    MIN_BARS,
    detect_regime,
    detect_regimes,
    expanding_percentile,
    label_regimes,
)


def _frame(close: np.ndarray) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="ts")
    close = np.asarray(close, dtype=float)
    return pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999,
                         "close": close, "volume": np.full(len(close), 100.0)}, index=index)


def _noise(n: int, scale: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def test_clean_uptrend_is_up():
    n = 400
    close = 100.0 * np.exp(np.cumsum(0.002 + _noise(n, 0.001)))
    regime = detect_regime(_frame(close))
    assert regime["trend"] == "up"
    assert regime["efficiency_ratio"] > 0.5
    assert regime["ma_slope"] > 0


def test_clean_downtrend_is_down():
    n = 400
    close = 100.0 * np.exp(np.cumsum(-0.002 + _noise(n, 0.001, 1)))
    assert detect_regime(_frame(close))["trend"] == "down"


def test_flat_oscillation_is_range():
    n = 400
    close = 100.0 + 2.0 * np.sin(np.arange(n) * 2 * np.pi / 20) + _noise(n, 0.05)
    regime = detect_regime(_frame(close))
    assert regime["trend"] == "range"
    assert regime["efficiency_ratio"] < 0.3


def test_volatility_spike_is_high_and_calm_is_low():
    n = 600
    calm = _noise(n, 0.001, 2)
    spike = calm.copy()
    spike[-30:] = _noise(30, 0.02, 3)
    high = detect_regime(_frame(100.0 * np.exp(np.cumsum(spike))))
    assert high["volatility"] == "high"
    assert high["vol_percentile"] > 0.9
    quiet = calm.copy()
    quiet[:-30] = _noise(n - 30, 0.01, 4)  # the recent bars are the calmest of the history
    low = detect_regime(_frame(100.0 * np.exp(np.cumsum(quiet))))
    assert low["volatility"] == "low"
    assert low["regime"] == f"{low['trend']}/low"


def test_labels_use_only_past_data():
    n = 300
    close = 100.0 * np.exp(np.cumsum(_noise(n, 0.01, 5)))
    full = label_regimes(_frame(close))
    cut = 200
    prefix = label_regimes(_frame(close[: cut + 1]))
    pd.testing.assert_frame_equal(full.iloc[: cut + 1], prefix)


def test_expanding_percentile_counts_only_the_past():
    values = pd.Series([3.0, 1.0, 2.0, np.nan, 5.0])
    out = expanding_percentile(values)
    assert out.tolist()[:3] == [1.0, 0.5, pytest.approx(2 / 3)]
    assert np.isnan(out.iloc[3])
    assert out.iloc[4] == 1.0


def test_short_history_is_unknown_and_bad_input_raises():
    short = detect_regime(_frame(np.linspace(100, 101, MIN_BARS - 1)))
    assert short["trend"] == "unknown" and short["bars"] == MIN_BARS - 1
    with pytest.raises(DataValidationError):
        detect_regime(pd.DataFrame({"open": [1.0]}))


def test_detect_regimes_per_symbol_and_annualised_vol():
    n = 200
    frames = {"A": _frame(100 * np.exp(np.cumsum(_noise(n, 0.01, 6)))),
              "B": _frame(100 * np.exp(np.cumsum(0.003 + _noise(n, 0.001, 7))))}
    out = detect_regimes(frames, periods_per_year=24 * 365)
    assert set(out) == {"A", "B"}
    assert out["B"]["trend"] == "up"
    assert out["A"]["realised_vol_annual"] == pytest.approx(out["A"]["realised_vol"] * np.sqrt(24 * 365))
