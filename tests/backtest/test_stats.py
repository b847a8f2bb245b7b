from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from blofin_pipeline.backtest import stats


def test_psr_hand_computed():
    # z = 0.1 * sqrt(99) / sqrt(1 - 0 + (3 - 1) / 4 * 0.01) = 0.994987 / 1.002497 = 0.992525
    assert stats.probabilistic_sharpe_ratio(0.1, 100) == pytest.approx(0.839525, abs=1e-6)
    # against a benchmark equal to the Sharpe itself: a coin toss
    assert stats.probabilistic_sharpe_ratio(0.2, 500, -1.0, 6.0, benchmark=0.2) == pytest.approx(0.5)
    # negative skew and fat tails widen the estimate's error and lower the PSR
    assert stats.probabilistic_sharpe_ratio(0.1, 100, -2.0, 9.0) < stats.probabilistic_sharpe_ratio(0.1, 100)
    # z = 0.05 * sqrt(399) / sqrt(1 + 0.5 * 0.05 + 2 * 0.0025) = 0.998749 / 1.014889
    assert stats.probabilistic_sharpe_ratio(0.05, 400, -0.5, 9.0) == pytest.approx(
        scipy.stats.norm.cdf(0.05 * math.sqrt(399) / math.sqrt(1.03)), rel=1e-12)


def test_dsr_reproduces_bailey_lopez_de_prado_example():
    # The paper's example: annualised SR 2.5 over 1250 daily returns (250 a year), skew -3,
    # kurtosis 10, best of N = 100 trials whose annualised Sharpe variance is 0.5.
    sr0 = stats.expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    dsr = stats.probabilistic_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, benchmark=sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_expected_max_sharpe_grows_with_trials_and_matches_simulation():
    values = [stats.expected_max_sharpe(n, 1.0) for n in (1, 2, 10, 100, 1000)]
    assert values[0] == 0.0
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((20_000, 100)).max(axis=1).mean()
    assert stats.expected_max_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.02)
    with pytest.raises(ValueError, match="n_trials"):
        stats.expected_max_sharpe(0, 1.0)
    with pytest.raises(ValueError, match="sharpe_variance"):
        stats.expected_max_sharpe(5, -1.0)


def test_moments_match_scipy():
    r = np.random.default_rng(1).standard_t(5, 2000)
    assert stats.skewness(r) == pytest.approx(scipy.stats.skew(r), rel=1e-10)
    assert stats.kurtosis(r) == pytest.approx(scipy.stats.kurtosis(r, fisher=False), rel=1e-10)
    assert stats.sharpe_per_period(r) == pytest.approx(r.mean() / r.std(ddof=1))
    assert math.isnan(stats.sharpe_per_period(np.ones(10)))


def test_dsr_on_noise_with_many_trials_is_not_significant():
    rng = np.random.default_rng(7)
    trials = rng.normal(0.0, 0.01, size=(200, 2000))   # 200 strategies, no edge
    sharpes = trials.mean(axis=1) / trials.std(axis=1, ddof=1)
    best = trials[int(np.argmax(sharpes))]
    assert stats.psr_from_returns(best) > 0.95           # the lucky winner looks significant...
    dsr = stats.deflated_sharpe_ratio(best, n_trials=200, trial_sharpe_std=float(sharpes.std(ddof=1)))
    assert dsr < stats.SIGNIFICANT_DSR                       # ...until deflated for 200 trials
    assert dsr < 0.7


def test_dsr_with_planted_edge_is_near_one():
    rng = np.random.default_rng(8)
    trials = rng.normal(0.0, 0.01, size=(50, 2000))
    trials[0] += 0.0015                                   # per-period Sharpe ~0.15
    sharpes = trials.mean(axis=1) / trials.std(axis=1, ddof=1)
    assert int(np.argmax(sharpes)) == 0
    dsr = stats.deflated_sharpe_ratio(trials[0], n_trials=50, trial_sharpe_std=float(sharpes[1:].std(ddof=1)))
    assert dsr > 0.99


def test_dsr_without_trial_dispersion_equals_psr():
    r = np.random.default_rng(9).normal(0.001, 0.01, 500)
    assert stats.deflated_sharpe_ratio(r, 1, 0.3) == pytest.approx(stats.psr_from_returns(r))
    assert stats.deflated_sharpe_ratio(r, 20, 0.0) == pytest.approx(stats.psr_from_returns(r))
    assert stats.deflated_sharpe_ratio(r, 20, 0.05) < stats.psr_from_returns(r)


def test_psr_degenerate_inputs():
    assert math.isnan(stats.psr_from_returns([0.01, 0.01, 0.01, 0.01]))
    assert math.isnan(stats.probabilistic_sharpe_ratio(float("nan"), 100))
    with pytest.raises(ValueError, match="n_obs"):
        stats.probabilistic_sharpe_ratio(0.1, 1)


def test_composite_score_formula_and_ordering():
    good = {"sharpe": 2.0, "calmar": 1.5, "max_drawdown": -0.1, "n_trades": 100, "dsr": 0.97}
    assert stats.composite_score(good) == pytest.approx(0.4 * 2 / 3 + 0.2 * 0.5 + 0.4 * 0.94)
    # few trades shrink a positive score
    assert stats.composite_score({**good, "n_trades": 15}) == pytest.approx(stats.composite_score(good) / 2)
    # deep drawdown is penalised beyond 20 %
    deep = {**good, "max_drawdown": -0.5}
    assert stats.composite_score(good) - stats.composite_score(deep) == pytest.approx(0.3)
    # a lucky winner (low DSR) ranks below a genuine one with the same Sharpe
    assert stats.composite_score({**good, "dsr": 0.3}) < stats.composite_score(good)
    bad = {"sharpe": -1.5, "calmar": -0.5, "max_drawdown": -0.6, "n_trades": 3, "dsr": 0.01}
    assert stats.composite_score(bad) < 0
    assert stats.composite_score(bad) == pytest.approx(
        0.4 * -0.5 + 0.2 * (-0.5 / 3) + 0.4 * (2 * 0.01 - 1) - 0.4)
    # missing or non-finite values are neutral, never an error
    assert stats.composite_score({"sharpe": float("nan"), "profit_factor": float("inf")}) == 0.0
    # capped
    assert stats.composite_score({**good, "sharpe": 50.0, "calmar": 90.0, "dsr": 1.0}) == pytest.approx(1.0)
