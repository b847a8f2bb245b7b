from __future__ import annotations

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from blofin_pipeline.backtest import metrics as m

PPY = 365 * 24
RETURN_ARRAYS = arrays(
    np.float64, st.integers(3, 200),
    elements=st.floats(-0.2, 0.2, allow_nan=False, allow_subnormal=False),
)


@pytest.fixture(params=[0, 1, 2])
def returns(request):
    rng = np.random.default_rng(request.param)
    return rng.standard_t(4, 1000) * 0.01 + 0.0003


def test_pinned_against_empyrical(returns):
    r = returns
    assert m.total_return(r) == pytest.approx(empyrical.cum_returns_final(r), rel=1e-10)
    assert m.cagr(r, PPY) == pytest.approx(empyrical.cagr(r, annualization=PPY), rel=1e-10)
    assert m.annual_volatility(r, PPY) == pytest.approx(
        empyrical.annual_volatility(r, annualization=PPY), rel=1e-12)
    assert m.sharpe_ratio(r, PPY) == pytest.approx(empyrical.sharpe_ratio(r, annualization=PPY), rel=1e-12)
    assert m.sortino_ratio(r, PPY) == pytest.approx(empyrical.sortino_ratio(r, annualization=PPY), rel=1e-12)
    assert m.downside_risk(r, PPY) == pytest.approx(empyrical.downside_risk(r, annualization=PPY), rel=1e-12)
    assert m.max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)
    assert m.calmar_ratio(r, PPY) == pytest.approx(empyrical.calmar_ratio(r, annualization=PPY), rel=1e-10)
    np.testing.assert_allclose(m.drawdown_series(r), empyrical.stats.drawdown_series(r), rtol=1e-12, atol=1e-15)


def test_hand_computed_values():
    r = np.array([0.10, -0.20, 0.05])
    assert m.total_return(r) == pytest.approx(1.1 * 0.8 * 1.05 - 1)
    assert m.max_drawdown(r) == pytest.approx(-0.2)
    # the starting equity counts as a peak: an immediate loss is a drawdown
    assert m.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)
    assert m.cagr([0.21], 2.0) == pytest.approx(1.21 ** 2 - 1)  # half a year
    mean, std = r.mean(), r.std(ddof=1)
    assert m.sharpe_ratio(r, 4) == pytest.approx(mean / std * 2)
    assert m.downside_risk(r, 1) == pytest.approx(np.sqrt(0.04 / 3))
    assert m.sortino_ratio(r, 1) == pytest.approx(mean / np.sqrt(0.04 / 3))
    assert m.win_rate([0.1, -0.1, 0.0, 0.2]) == 0.5
    assert m.profit_factor([3.0, -1.0, -0.5, 0.0]) == pytest.approx(2.0)
    assert m.exposure([0, 1, -0.5, 0]) == 0.5
    assert m.turnover([0, 1, -1, -1], 4) == pytest.approx(3 * 4 / 4)


def test_degenerate_inputs_are_nan():
    assert np.isnan(m.total_return([]))
    assert np.isnan(m.cagr([], PPY))
    assert np.isnan(m.sharpe_ratio([0.01], PPY))
    assert np.isnan(m.sharpe_ratio([0.01, 0.01, 0.01], PPY))  # no dispersion
    assert np.isnan(m.sortino_ratio([0.01, 0.02], PPY))        # no downside
    assert np.isnan(m.max_drawdown([]))
    assert np.isnan(m.calmar_ratio([0.01, 0.02], PPY))         # no drawdown
    assert np.isnan(m.win_rate([]))
    assert np.isnan(m.profit_factor([]))
    assert m.profit_factor([0.5]) == np.inf
    assert m.cagr([-1.0, 0.1], PPY) == -1.0


@pytest.mark.parametrize("func", [m.cagr, m.sharpe_ratio, m.sortino_ratio, m.annual_volatility, m.calmar_ratio])
def test_bad_periods_raise(func):
    with pytest.raises(ValueError, match="periods_per_year"):
        func([0.01, -0.01], 0)


def test_two_dimensional_input_raises():
    with pytest.raises(ValueError, match="one-dimensional"):
        m.sharpe_ratio(np.zeros((3, 2)), PPY)


@settings(max_examples=80, deadline=None)
@given(r=RETURN_ARRAYS, k=st.floats(0.1, 5.0))
def test_sharpe_is_scale_invariant_and_sign_antisymmetric(r, k):
    s = m.sharpe_ratio(r, PPY)
    if np.isnan(s) or np.std(r) < 1e-9:
        return
    assert m.sharpe_ratio(r * k, PPY) == pytest.approx(s, rel=1e-7)
    assert m.sharpe_ratio(-r, PPY) == pytest.approx(-s, rel=1e-7)


@settings(max_examples=80, deadline=None)
@given(r=RETURN_ARRAYS, c=st.floats(-0.01, 0.01))
def test_volatility_ignores_a_constant_shift(r, c):
    assert m.annual_volatility(r + c, PPY) == pytest.approx(m.annual_volatility(r, PPY), rel=1e-6, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(r=RETURN_ARRAYS)
def test_drawdown_bounds_and_sign_cases(r):
    mdd = m.max_drawdown(r)
    assert -1.0 <= mdd <= 0.0
    assert mdd <= min(m.total_return(r), 0.0) + 1e-12
    assert m.max_drawdown(np.abs(r)) == 0.0              # never below a previous peak
    assert m.max_drawdown(-np.abs(r)) == pytest.approx(m.total_return(-np.abs(r)), abs=1e-12)
    assert (m.drawdown_series(r) <= 0).all()
