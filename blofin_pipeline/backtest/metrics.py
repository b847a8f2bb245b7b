"""Performance metrics of a per-bar return series, in the manner of empyrical ``stats.py``.

Every function takes simple (non-cumulative) per-bar returns as a 1-D array-like and, where
annualisation applies, the number of bars in a 365-day year (crypto trades every day; see
:func:`blofin_pipeline.timeframes.periods_per_year`). Degenerate input (too few
returns, zero dispersion, no losing trade, ...) gives NaN; a bad argument raises ValueError.
Ratios follow empyrical's definitions, so they can be pinned against empyrical-reloaded:
the sample standard deviation uses ``ddof=1``, the drawdown is measured from the running
peak of the equity curve *including* the starting equity, and CAGR uses
``len(returns) / periods_per_year`` years.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike


def _as_returns(returns: ArrayLike) -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_periods(periods_per_year: float) -> float:
    if not np.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return float(periods_per_year)


def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole series (final equity / initial equity - 1)."""
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    return float(np.prod(1.0 + r) - 1.0)


def cagr(returns: ArrayLike, periods_per_year: float) -> float:
    """Compound annual growth rate, the series lasting len(returns) / periods_per_year years."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    ending = np.prod(1.0 + r)
    if ending <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.power(ending, ppy / r.size) - 1.0)


def annual_volatility(returns: ArrayLike, periods_per_year: float) -> float:
    """Annualised sample standard deviation (ddof=1) of the returns."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    if r.size < 2:
        return np.nan
    return float(np.std(r, ddof=1) * np.sqrt(ppy))


def sharpe_ratio(returns: ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio: mean over sample std (ddof=1) of excess returns, times sqrt(ppy)."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns) - risk_free
    if r.size < 2:
        return np.nan
    std = np.std(r, ddof=1)
    if not std > 0 or r.max() == r.min():
        return np.nan
    return float(np.mean(r) / std * np.sqrt(ppy))


def downside_risk(returns: ArrayLike, periods_per_year: float, required_return: float = 0.0) -> float:
    """Annualised root-mean-square of the returns' shortfall below required_return."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    if r.size < 1:
        return np.nan
    shortfall = np.minimum(r - required_return, 0.0)
    return float(np.sqrt(np.mean(shortfall * shortfall)) * np.sqrt(ppy))


def sortino_ratio(returns: ArrayLike, periods_per_year: float, required_return: float = 0.0) -> float:
    """Annualised mean excess return over annualised downside risk (empyrical's definition)."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    if r.size < 2:
        return np.nan
    risk = downside_risk(r, ppy, required_return)
    if not risk > 0:
        return np.nan
    return float(np.mean(r - required_return) * ppy / risk)


def drawdown_series(returns: ArrayLike) -> np.ndarray:
    """Drawdown (<= 0) of the equity curve from its running peak, the start counting as a peak."""
    r = _as_returns(returns)
    equity = np.cumprod(1.0 + r)
    peak = np.maximum(np.maximum.accumulate(equity), 1.0) if r.size else equity
    return equity / peak - 1.0


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough fall of the equity curve, as a negative fraction (0 if none)."""
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    return float(min(drawdown_series(r).min(), 0.0))


def calmar_ratio(returns: ArrayLike, periods_per_year: float) -> float:
    """CAGR over the absolute maximum drawdown; NaN when there is no drawdown."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    if r.size == 0:
        return np.nan
    mdd = max_drawdown(r)
    if not mdd < 0:
        return np.nan
    return float(cagr(r, ppy) / abs(mdd))


def win_rate(trade_returns: ArrayLike) -> float:
    """Fraction of trades with a positive return; NaN without trades."""
    t = _as_returns(trade_returns)
    if t.size == 0:
        return np.nan
    return float(np.count_nonzero(t > 0) / t.size)


def profit_factor(trade_pnl: ArrayLike) -> float:
    """Gross profit over gross loss of the trades; inf with wins but no loss, NaN without either."""
    t = _as_returns(trade_pnl)
    gross_profit = float(t[t > 0].sum())
    gross_loss = float(-t[t < 0].sum())
    if gross_loss > 0:
        return gross_profit / gross_loss
    return np.inf if gross_profit > 0 else np.nan


def exposure(positions: ArrayLike) -> float:
    """Fraction of bars with a non-zero position."""
    p = _as_returns(positions)
    if p.size == 0:
        return np.nan
    return float(np.count_nonzero(p) / p.size)


def turnover(positions: ArrayLike, periods_per_year: float) -> float:
    """Traded notional per year as a multiple of equity: sum |change of position| per year (from flat)."""
    ppy = _check_periods(periods_per_year)
    p = _as_returns(positions)
    if p.size == 0:
        return np.nan
    traded = np.abs(np.diff(p, prepend=0.0)).sum()
    return float(traded * ppy / p.size)
