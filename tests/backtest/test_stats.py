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


# -- power ------------------------------------------------------------------------------
Z95 = 1.6448536269514722  # Phi^-1(0.95)


def test_no_skill_sharpe_std_is_one_over_root_t():
    assert stats.no_skill_sharpe_std(100) == pytest.approx(0.1)
    assert stats.no_skill_sharpe_std(2160) == pytest.approx(0.021516574, rel=1e-8)
    with pytest.raises(ValueError, match="n_obs"):
        stats.no_skill_sharpe_std(0)


def test_required_sharpe_one_trial_by_hand():
    # N = 1: SR0 = 0, so (T-1) SR^2 = z^2 (1 + SR^2 / 2): SR = z / sqrt(T - 1 - z^2 / 2)
    assert stats.required_sharpe(1, 101) == pytest.approx(Z95 / math.sqrt(100 - Z95 ** 2 / 2), rel=1e-12)
    assert stats.required_sharpe(1, 101) == pytest.approx(0.165609, abs=1e-6)


def test_required_sharpe_reaches_the_target_dsr_exactly():
    for n_trials, n_obs, skew, kurt in ((140, 2160, 0.0, 3.0), (600, 7440, -0.5, 8.0), (7, 500, 0.3, 4.0)):
        need = stats.required_sharpe(n_trials, n_obs, skew=skew, kurt=kurt)
        sr0 = stats.expected_max_sharpe(n_trials, 1.0 / n_obs)
        assert stats.probabilistic_sharpe_ratio(need, n_obs, skew, kurt, sr0) == pytest.approx(0.95, abs=1e-9)
        assert stats.probabilistic_sharpe_ratio(need * 0.98, n_obs, skew, kurt, sr0) < 0.95


def test_power_matches_the_issue_figure():
    # issue 11: 90 days of 1H out-of-sample bars, ~140 trials, dispersion 1/sqrt(T): about 8.6
    p = stats.power(140, 90 * 24, 8760)
    assert p["trial_sharpe_std"] == pytest.approx(1 / math.sqrt(2160))
    # SR0 = (0.4228 * z(1 - 1/140) + 0.5772 * z(1 - 1/(140 e))) / sqrt(2160) = 2.6467 / 46.476
    assert p["expected_max_sharpe"] == pytest.approx(0.056950, abs=1e-5)
    assert p["required_sharpe_annual"] == pytest.approx(8.65, abs=0.01)
    assert stats.power(140, 310 * 24, 8760)["required_sharpe_annual"] == pytest.approx(4.66, abs=0.01)


def test_min_track_record_length_by_hand():
    # 1 + (1 + (3 - 1) / 4 * 0.1^2) * (z / 0.1)^2 = 1 + 1.005 * 270.5543 = 272.907
    assert stats.min_track_record_length(0.1) == pytest.approx(272.9071, abs=1e-3)
    # a benchmark and skew: 1 + (1 + 0.5 * 0.1 + 1.5 * 0.01) * (z / 0.05)^2
    assert stats.min_track_record_length(0.1, benchmark=0.05, skew=-0.5, kurt=7.0) == pytest.approx(
        1 + 1.065 * (Z95 / 0.05) ** 2, rel=1e-12)
    assert stats.min_track_record_length(0.0) == math.inf
    assert stats.min_track_record_length(-0.1) == math.inf


def test_deflated_track_record_length_inverts_required_sharpe():
    need = stats.required_sharpe(140, 2160)
    assert stats.deflated_track_record_length(need, 140) == 2160
    assert stats.deflated_track_record_length(need * 1.01, 140) < 2160
    # one trial: no deflation, the plain MinTRL (to the bar)
    assert abs(stats.deflated_track_record_length(0.1, 1) - stats.min_track_record_length(0.1)) <= 1
    assert stats.deflated_track_record_length(-0.01, 140) == math.inf


def test_track_records_in_days():
    out = stats.track_records(8.65054, 140, 8760)
    assert out["dsr_trl_days"] == pytest.approx(90, abs=0.1)
    assert out["min_trl_bars"] == pytest.approx(stats.min_track_record_length(8.65054 / math.sqrt(8760)))
    assert stats.track_records(-1.0, 140, 8760)["dsr_trl_days"] is None
    assert stats.track_records(None, 140, 8760) == {"min_trl_bars": None, "min_trl_days": None,
                                                    "dsr_trl_bars": None, "dsr_trl_days": None}
