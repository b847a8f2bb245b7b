from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest.engine import run_backtest
from blofin_pipeline.backtest.walkforward import (
    fold_bounds,
    sample_candidates,
    walk_forward,
)
from blofin_pipeline.exceptions import BacktestError, StrategyError


def make_candles(close: np.ndarray, freq: str = "1h") -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=close.size, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
                        index=index)


def noise_candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return make_candles(100 * np.exp(np.cumsum(rng.normal(0, 0.005, n))))


def constant_direction(candles: pd.DataFrame, params: dict) -> pd.Series:
    return pd.Series(float(params["direction"]), index=candles.index)


def momentum(candles: pd.DataFrame, params: dict) -> pd.Series:
    ret = candles["close"].pct_change(params["lookback"])
    return np.sign(ret).fillna(0.0)


def test_fold_bounds_rolling_and_anchored():
    assert fold_bounds(100, 2, 50, anchored=False) == [(0, 50, 50, 75), (25, 75, 75, 100)]
    assert fold_bounds(100, 2, 50, anchored=True) == [(0, 50, 50, 75), (0, 75, 75, 100)]
    assert fold_bounds(100, 4, 20, anchored=False) == [(0, 20, 20, 40), (20, 40, 40, 60), (40, 60, 60, 80),
                                                        (60, 80, 80, 100)]
    with pytest.raises(BacktestError, match="too few"):
        fold_bounds(10, 8, 5, anchored=False)
    with pytest.raises(BacktestError, match="too few"):
        fold_bounds(100, 2, 100, anchored=False)


def test_sample_candidates_defaults_first_distinct_and_in_range():
    cands = sample_candidates({"fast": 12, "slow": 26, "k": 2.0},
                              {"fast": (5, 50), "slow": (20, 200), "k": (0.5, 3.0)}, 8, seed=1)
    assert cands[0] == {"fast": 12, "slow": 26, "k": 2.0}
    assert len(cands) == 9
    assert len({tuple(sorted(c.items())) for c in cands}) == 9
    for c in cands[1:]:
        assert isinstance(c["fast"], int) and 5 <= c["fast"] <= 50
        assert isinstance(c["k"], float) and 0.5 <= c["k"] <= 3.0
    # a space smaller than asked for yields what exists
    small = sample_candidates({"direction": 0}, {"direction": (-1, 1)}, 8)
    assert sorted(c["direction"] for c in small) == [-1, 0, 1]
    with pytest.raises(ValueError, match="param_space"):
        sample_candidates({}, {"x": (3, 1)}, 2)


def test_parameters_are_chosen_on_train_and_judged_on_unseen_data():
    # Up-trend in the training half, down-trend in the test half. Walk-forward must choose
    # "long" on the training data and then lose out of sample; judging on the test data
    # would have picked "short".
    close = np.concatenate([np.linspace(100, 150, 200), np.linspace(150, 90, 200)])
    res = walk_forward(make_candles(close), constant_direction, {"direction": -1}, {"direction": (-1, 1)},
                       n_folds=1, train_frac=0.5, n_candidates=8, fee=0.0)
    assert res.folds[0].params == {"direction": 1}
    assert res.metrics["total_return"] < -0.3
    assert res.folds[0].train_objective > 0
    assert res.oos_returns.index[0] == res.folds[0].test_start
    assert res.folds[0].train_end < res.folds[0].test_start


def test_each_parameter_set_is_computed_once_over_the_whole_window():
    candles = noise_candles(1200, seed=3)
    calls: list[tuple[dict, pd.Index]] = []

    def recording(c: pd.DataFrame, params: dict) -> pd.Series:
        calls.append((dict(params), c.index))
        return momentum(c, params)

    res = walk_forward(candles, recording, {"lookback": 10}, {"lookback": (2, 60)}, n_folds=3,
                       n_candidates=5, seed=4, fee=0.0006)
    assert len(res.folds) == 3
    assert [p for p, _ in calls] == res.candidates  # once each, in order, whatever the folds
    assert all(index.equals(candles.index) for _, index in calls)
    # OOS returns cover the test windows exactly, in order, without overlap
    assert res.oos_returns.index.equals(candles.index[600:])


def test_selection_never_sees_test_bars_and_test_uses_only_the_chosen_params():
    candles = noise_candles(1200, seed=3)
    kwargs = dict(n_folds=3, n_candidates=6, seed=4, fee=0.0006)
    res = walk_forward(candles, momentum, {"lookback": 10}, {"lookback": (2, 60)}, **kwargs)
    for k, fold in enumerate(res.folds):
        # Other prices from fold k's first test bar on: folds up to k choose exactly as before.
        changed = candles.copy()
        later = changed.index >= fold.test_start
        changed.loc[later, "close"] *= np.exp(np.random.default_rng(k).normal(0, 0.02, later.sum()))
        other = walk_forward(changed, momentum, {"lookback": 10}, {"lookback": (2, 60)}, **kwargs)
        assert [f.params for f in other.folds[:k + 1]] == [f.params for f in res.folds[:k + 1]]
        assert [f.train_objective for f in other.folds[:k + 1]] == [f.train_objective for f in res.folds[:k + 1]]
        np.testing.assert_array_equal(other.trial_sharpes[:k + 1], res.trial_sharpes[:k + 1])
        # ... and its test window is the chosen parameters' own backtest on the test bars.
        test = candles.loc[fold.test_start:fold.test_end]
        signal = momentum(candles, fold.params).loc[test.index].to_numpy().copy()
        signal[-1] = 0.0
        expected = run_backtest(test, signal, 0.0006)
        assert fold.test_metrics == pytest.approx(expected.metrics, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("anchored", [False, True])
def test_train_bars_sets_the_initial_training_span(anchored):
    candles = noise_candles(1000, seed=3)
    res = walk_forward(candles, momentum, {"lookback": 10}, {"lookback": (2, 40)}, n_folds=5, train_bars=300,
                       anchored=anchored, n_candidates=2, timeframe="1H")
    assert res.oos_returns.index.equals(candles.index[300:])  # every bar after the training span, once
    assert [f.test_start for f in res.folds] == list(candles.index[[300, 440, 580, 720, 860]])
    starts = [f.train_start for f in res.folds]
    assert starts == ([candles.index[0]] * 5 if anchored else list(candles.index[[0, 140, 280, 420, 560]]))


def test_oos_metrics_and_trial_bookkeeping():
    candles = noise_candles(2000, seed=5)
    res = walk_forward(candles, momentum, {"lookback": 10}, {"lookback": (2, 80)}, n_folds=4,
                       n_candidates=8, seed=0, timeframe="1H")
    mt = res.metrics
    assert res.n_trials == mt["n_trials"] == 9
    assert res.trial_sharpes.shape == (4, 9)
    assert np.isfinite(res.trial_sharpes).all()
    assert mt["trial_sharpe_std"] > 0
    assert 0.0 <= mt["dsr"] <= mt["psr"] <= 1.0
    assert mt["oos_bars"] == 1000
    assert mt["n_trades"] == sum(f.test_metrics["n_trades"] for f in res.folds)
    chained = np.prod([1 + f.test_metrics["total_return"] for f in res.folds]) - 1
    assert mt["total_return"] == pytest.approx(chained, rel=1e-9)
    assert res.oos_equity.iloc[-1] == pytest.approx(1 + chained, rel=1e-9)
    r = res.oos_returns.to_numpy()
    assert mt["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(8760), rel=1e-9)


def test_noise_market_is_not_significant():
    candles = noise_candles(3000, seed=11)
    res = walk_forward(candles, momentum, {"lookback": 10}, {"lookback": (2, 120)}, n_folds=4,
                       n_candidates=12, seed=1)
    assert res.metrics["dsr"] < 0.95


def test_planted_edge_is_found_out_of_sample():
    # Price moves follow the sign of the previous move with probability 0.7: momentum(1) wins.
    rng = np.random.default_rng(12)
    n = 4000
    steps = np.empty(n)
    steps[0] = 0.004
    for t in range(1, n):
        sign = np.sign(steps[t - 1]) if rng.random() < 0.7 else -np.sign(steps[t - 1])
        steps[t] = sign * abs(rng.normal(0.004, 0.001))
    candles = make_candles(100 * np.exp(np.cumsum(steps)))
    res = walk_forward(candles, momentum, {"lookback": 30}, {"lookback": (1, 8)}, n_folds=4,
                       n_candidates=10, seed=2, fee=0.0002)
    assert all(f.params["lookback"] == 1 for f in res.folds)
    assert res.metrics["sharpe"] > 3
    assert res.metrics["dsr"] > 0.95


def test_failing_candidate_is_skipped_but_failing_defaults_raise():
    candles = noise_candles(600, seed=6)

    def picky(c: pd.DataFrame, params: dict) -> pd.Series:
        if params["lookback"] > 20:
            raise StrategyError(f"strategy 'picky' lookback {params['lookback']} too long")
        return momentum(c, params)

    res = walk_forward(candles, picky, {"lookback": 5}, {"lookback": (2, 40)}, n_folds=2, n_candidates=8)
    assert all(f.params["lookback"] <= 20 for f in res.folds)
    assert np.isnan(res.trial_sharpes).any()
    with pytest.raises(BacktestError, match="default parameters"):
        walk_forward(candles, picky, {"lookback": 30}, {"lookback": (2, 40)}, n_folds=2)


def test_bad_signal_output_raises():
    candles = noise_candles(400, seed=7)
    with pytest.raises(BacktestError, match="Series"):
        walk_forward(candles, lambda c, p: np.zeros(len(c)), {}, {}, n_folds=2)
    with pytest.raises(BacktestError, match=r"\[-1, 1\]"):
        walk_forward(candles, lambda c, p: pd.Series(3.0, index=c.index), {}, {}, n_folds=2)
    with pytest.raises(ValueError, match="objective"):
        walk_forward(candles, momentum, {"lookback": 3}, {}, objective="luck")



def test_earlier_candidates_replace_a_folds_own_up_to_their_bound():
    # A tuned version up to its fitted_until: those folds choose among the parent's candidates
    # (same draws as the parent's own walk-forward), the later folds among its own.
    candles = noise_candles(1600, seed=8)
    space = {"lookback": (2, 60)}
    parent = walk_forward(candles, momentum, {"lookback": 10}, space, n_folds=4, n_candidates=5, seed=1)
    until = parent.folds[1].test_start
    tuned = walk_forward(candles, momentum, {"lookback": 41}, space, n_folds=4, n_candidates=5, seed=2,
                         earlier_candidates=[(until, parent.candidates)])
    own = sample_candidates({"lookback": 41}, space, 5, seed=2)
    assert [f.params for f in tuned.folds[:2]] == [f.params for f in parent.folds[:2]]
    end = parent.folds[1].test_end
    assert tuned.oos_returns[:end].equals(parent.oos_returns[:end])
    assert not tuned.oos_returns[end:].equals(parent.oos_returns[end:])
    assert all(f.params in own for f in tuned.folds[2:]) and tuned.candidates == own
    assert tuned.folds[2].test_start > until
