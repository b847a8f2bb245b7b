"""The shared-signal walk-forward against the per-fold reference loop it replaced."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest.walkforward import walk_forward
from blofin_pipeline.market.sample import generate_candles
from blofin_pipeline.strategies.builtin import builtin_strategies
from blofin_pipeline.strategies.runner import InProcessStrategy
from tests.backtest.reference_walkforward import full_window, reference_walk_forward

BUILTINS = ("ema_cross", "bollinger_reversion", "rsi_reversion", "donchian_breakout")


def sample(symbol: str, seed: int, bars: int = 1500) -> pd.DataFrame:
    end = pd.Timestamp("2025-03-01", tz="UTC")
    return generate_candles(symbol, "1H", end - pd.Timedelta(hours=bars), end, seed=seed)


def assert_same(new, ref) -> None:
    assert [f.params for f in new.folds] == [f.params for f in ref.folds]
    for a, b in zip(new.folds, ref.folds):
        assert (a.train_start, a.train_end, a.test_start, a.test_end) == \
               (b.train_start, b.train_end, b.test_start, b.test_end)
        assert _close(a.train_objective, b.train_objective)
        assert a.test_metrics.keys() == b.test_metrics.keys()
        assert all(_close(a.test_metrics[k], b.test_metrics[k]) for k in a.test_metrics), (a, b)
    assert new.metrics.keys() == ref.metrics.keys()
    assert all(_close(new.metrics[k], ref.metrics[k]) for k in new.metrics), (new.metrics, ref.metrics)
    np.testing.assert_allclose(new.trial_sharpes, ref.trial_sharpes, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new.oos_returns.to_numpy(), ref.oos_returns.to_numpy(), rtol=1e-12, atol=1e-15)
    assert new.oos_returns.index.equals(ref.oos_returns.index)
    assert new.candidates == ref.candidates


def _close(a: float, b: float) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-14)


def strategies():
    available = builtin_strategies()
    missing = set(BUILTINS) - set(available)
    assert not missing, f"built-ins renamed: {missing}"
    return [InProcessStrategy(available[name]) for name in BUILTINS]


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("seed", [0, 7])
def test_equals_the_reference_given_the_whole_windows_signals(anchored, seed):
    candles = sample("ETH-USDT", seed)
    for fn in strategies():
        kwargs = dict(n_folds=4, n_candidates=6, seed=seed, fee=0.0006, slippage=0.0001, timeframe="1H",
                      anchored=anchored)
        new = walk_forward(candles, fn, fn.params, fn.param_space, **kwargs)
        ref = reference_walk_forward(candles, full_window(fn, candles), fn.params, fn.param_space, **kwargs)
        assert_same(new, ref)


@pytest.mark.parametrize("objective", ["sharpe", "calmar", "total_return"])
def test_anchored_folds_equal_the_reference_exactly(objective):
    # Anchored folds all start at bar 0: the per-fold signals of the reference are the
    # prefixes of the whole window's, so nothing but the implementation differs.
    candles = sample("SOL-USDT", 3)
    for fn in strategies():
        kwargs = dict(n_folds=3, n_candidates=5, seed=11, fee=0.0006, timeframe="1H", anchored=True,
                      objective=objective)
        assert_same(walk_forward(candles, fn, fn.params, fn.param_space, **kwargs),
                    reference_walk_forward(candles, fn, fn.params, fn.param_space, **kwargs))
