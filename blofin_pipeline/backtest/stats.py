"""Probabilistic and deflated Sharpe ratios (Bailey & Lopez de Prado) and the composite score.

Sharpe ratios here are *per period* (per bar, not annualised), as the formulas require;
kurtosis is the plain (Pearson) kurtosis, 3 for a normal distribution.

* PSR(SR*) = Phi( (SR - SR*) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2) ),
  the probability that the true Sharpe ratio exceeds SR* given T returns with that skew
  and kurtosis (Bailey & Lopez de Prado 2012).
* Expected maximum Sharpe ratio among N independent trials whose Sharpe ratios have
  variance V (Bailey & Lopez de Prado 2014, "The Deflated Sharpe Ratio")::

      SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))

  with gamma the Euler-Mascheroni constant.
* DSR = PSR(SR0): the probability that the strategy's Sharpe ratio is real after
  accounting for having picked the best of N trials. DSR > 0.95 is "significant".
* Trial Sharpe dispersion (one definition for strategies, models and ensembles):
  ``sqrt(V) = 1/sqrt(T)``, the sampling error of a per-period Sharpe estimated from T
  returns when the true Sharpe is 0 (Lo 2002; with any skew and kurtosis, as the PSR
  variance term is 1 at SR = 0). It is fixed before any item's result is seen, the same
  for every item scored on the same span, and does not depend on what else the day scored.
* Power: the per-period Sharpe an item needs for DSR = 0.95 at N trials and T bars is
  the larger root of (SR - SR0)^2 (T - 1) = z^2 (1 - skew SR + (kurt - 1)/4 SR^2),
  z = Phi^-1(0.95) (:func:`required_sharpe`).
* Minimum track record length (Bailey & Lopez de Prado 2012), in bars, for an observed
  per-period Sharpe SR against a benchmark SR* at confidence p::

      MinTRL = 1 + (1 - skew SR + (kurt - 1)/4 SR^2) * (Phi^-1(p) / (SR - SR*))^2

  and its deflated form (:func:`deflated_track_record_length`): the bars after which the
  same SR would reach DSR = p at N trials, SR* = SR0(N, 1/T) shrinking as T grows.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from blofin_pipeline.numeric import finite_or
from blofin_pipeline.timeframes import DAYS_PER_YEAR

EULER_GAMMA = 0.5772156649015329
NORMAL = NormalDist()
SIGNIFICANT_DSR = 0.95  # deflated Sharpe probability needed to call a result significant

# composite_score weights and thresholds (see its docstring).
SCORE_SHARPE_WEIGHT = 0.4
SCORE_CALMAR_WEIGHT = 0.2
SCORE_DSR_WEIGHT = 0.4
SCORE_RATIO_CAP = 3.0
SCORE_DRAWDOWN_TOLERANCE = 0.20
SCORE_DRAWDOWN_PENALTY = 1.0
SCORE_MIN_TRADES = 30


def _returns(returns: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {arr.shape}")
    return arr


def sharpe_per_period(returns: npt.ArrayLike) -> float:
    """Non-annualised Sharpe ratio: mean over sample std (ddof=1); NaN without dispersion."""
    r = _returns(returns)
    if r.size < 2:
        return math.nan
    std = float(np.std(r, ddof=1))
    if not std > 0 or r.max() == r.min():
        return math.nan
    return float(np.mean(r) / std)


def _standardised_moment(returns: npt.ArrayLike, order: int) -> float:
    """Biased standardised moment of the given order; NaN with too few values or no dispersion."""
    r = _returns(returns)
    if r.size < order:
        return math.nan
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if not m2 > 0:
        return math.nan
    return float(np.mean(d ** order) / m2 ** (order / 2))


def skewness(returns: npt.ArrayLike) -> float:
    """Sample skewness (biased, third standardised moment); NaN without dispersion."""
    return _standardised_moment(returns, 3)


def kurtosis(returns: npt.ArrayLike) -> float:
    """Sample Pearson kurtosis (biased fourth standardised moment, normal = 3); NaN without dispersion."""
    return _standardised_moment(returns, 4)


def probabilistic_sharpe_ratio(
    sharpe: float, n_obs: int, skew: float = 0.0, kurt: float = 3.0, benchmark: float = 0.0
) -> float:
    """Probability that the true per-period Sharpe exceeds ``benchmark`` (Bailey & Lopez de Prado 2012)."""
    if n_obs < 2:
        raise ValueError(f"n_obs must be at least 2, got {n_obs!r}")
    if not all(math.isfinite(x) for x in (sharpe, skew, kurt, benchmark)):
        return math.nan
    variance = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe ** 2
    if not variance > 0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance)
    return NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of n_trials Sharpe ratios with zero true mean and this variance; 0 for one trial."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials!r}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise ValueError(f"sharpe_variance must be a non-negative number, got {sharpe_variance!r}")
    if n_trials == 1 or sharpe_variance == 0:
        return 0.0
    quantile_n = NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    quantile_ne = NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * quantile_n + EULER_GAMMA * quantile_ne)


def no_skill_sharpe_std(n_obs: int) -> float:
    """Std of a per-period Sharpe estimated from n_obs returns whose true Sharpe is 0: 1/sqrt(n_obs).

    The trial Sharpe dispersion of the DSR, for every item (strategy, model, ensemble).
    """
    if n_obs < 1:
        raise ValueError(f"n_obs must be at least 1, got {n_obs!r}")
    return 1.0 / math.sqrt(n_obs)


def _moment_term(sharpe: float, skew: float, kurt: float) -> float:
    return 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe ** 2


def required_sharpe(n_trials: int, n_obs: int, prob: float = SIGNIFICANT_DSR, skew: float = 0.0,
                    kurt: float = 3.0) -> float:
    """Per-period Sharpe whose DSR is exactly ``prob`` at n_trials trials and n_obs returns
    (trial dispersion 1/sqrt(n_obs)); normal returns unless skew and kurt are given.

    Solves (SR - SR0)^2 (T - 1) = z^2 (1 - skew SR + (kurt - 1)/4 SR^2) for its root above
    SR0 (the quadratic a SR^2 + b SR + c = 0 with a = (T-1) - z^2 (kurt-1)/4,
    b = z^2 skew - 2 (T-1) SR0, c = (T-1) SR0^2 - z^2).
    """
    if n_obs < 2:
        raise ValueError(f"n_obs must be at least 2, got {n_obs!r}")
    if not 0.5 < prob < 1:
        raise ValueError(f"prob must be in (0.5, 1), got {prob!r}")
    sr0 = expected_max_sharpe(n_trials, no_skill_sharpe_std(n_obs) ** 2)
    z, t1 = NORMAL.inv_cdf(prob), n_obs - 1.0
    a = t1 - z * z * (kurt - 1.0) / 4.0
    b = z * z * skew - 2.0 * t1 * sr0
    c = t1 * sr0 ** 2 - z * z
    disc = b * b - 4.0 * a * c
    if not (a > 0 and disc >= 0):
        return math.nan  # too few returns for this kurtosis: no Sharpe reaches prob
    return (-b + math.sqrt(disc)) / (2.0 * a)


def min_track_record_length(sharpe: float, benchmark: float = 0.0, prob: float = SIGNIFICANT_DSR,
                            skew: float = 0.0, kurt: float = 3.0) -> float:
    """MinTRL in bars (Bailey & Lopez de Prado 2012): the returns needed for PSR(benchmark)
    = prob at this per-period Sharpe; infinite when the Sharpe does not exceed the benchmark."""
    if not all(math.isfinite(x) for x in (sharpe, benchmark, skew, kurt)):
        return math.nan
    if sharpe <= benchmark:
        return math.inf
    z = NORMAL.inv_cdf(prob)
    return 1.0 + _moment_term(sharpe, skew, kurt) * (z / (sharpe - benchmark)) ** 2


def deflated_track_record_length(sharpe: float, n_trials: int, prob: float = SIGNIFICANT_DSR,
                                 skew: float = 0.0, kurt: float = 3.0) -> float:
    """Bars after which this per-period Sharpe reaches DSR = prob at n_trials trials with
    the trial dispersion 1/sqrt(T): the smallest T with PSR(SR0(N, 1/T)) >= prob, found by
    bisection (PSR grows with T for a positive Sharpe); infinite for a Sharpe <= 0."""
    if not all(math.isfinite(x) for x in (sharpe, skew, kurt)):
        return math.nan
    if sharpe <= 0:
        return math.inf

    def reaches(t: float) -> bool:
        sr0 = expected_max_sharpe(n_trials, 1.0 / t)
        return probabilistic_sharpe_ratio(sharpe, int(t), skew, kurt, sr0) >= prob

    low, high = 2.0, 4.0
    while not reaches(high):
        low, high = high, high * 2.0
        if high > 1e15:
            return math.inf
    while high - low > 1.0:
        mid = math.floor((low + high) / 2.0)
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return high


def power(n_trials: int, n_obs: int, periods_per_year: float, prob: float = SIGNIFICANT_DSR) -> dict[str, float]:
    """What a DSR of ``prob`` demands at N trials and T out-of-sample bars: the trial
    dispersion 1/sqrt(T), the expected best no-skill Sharpe SR0 and the Sharpe needed,
    per period and annualised (times sqrt(periods_per_year))."""
    std = no_skill_sharpe_std(n_obs)
    need = required_sharpe(n_trials, n_obs, prob)
    scale = math.sqrt(periods_per_year)
    return {"n_trials": int(n_trials), "oos_bars": int(n_obs), "prob": prob, "trial_sharpe_std": std,
            "expected_max_sharpe": expected_max_sharpe(n_trials, std ** 2),
            "required_sharpe_per_period": need, "required_sharpe_annual": need * scale}


def track_records(sharpe_annual: float | None, n_trials: int, periods_per_year: float,
                  prob: float = SIGNIFICANT_DSR) -> dict[str, float | None]:
    """An item's track record lengths for its own (annualised) Sharpe, normal returns
    assumed (skew and kurtosis change them by a few percent at these Sharpes), in bars
    and days: ``min_trl`` against a zero Sharpe, ``dsr_trl`` for DSR = prob at N trials.
    None without a Sharpe; infinite (JSON null) when the Sharpe is not positive."""
    if sharpe_annual is None or not math.isfinite(sharpe_annual):
        return {"min_trl_bars": None, "min_trl_days": None, "dsr_trl_bars": None, "dsr_trl_days": None}
    sr = sharpe_annual / math.sqrt(periods_per_year)
    bars_per_day = periods_per_year / DAYS_PER_YEAR
    out: dict[str, float | None] = {}
    for key, bars in (("min_trl", min_track_record_length(sr, prob=prob)),
                      ("dsr_trl", deflated_track_record_length(sr, n_trials, prob))):
        out[f"{key}_bars"] = bars if math.isfinite(bars) else None
        out[f"{key}_days"] = bars / bars_per_day if math.isfinite(bars) else None
    return out


def psr_from_returns(returns: npt.ArrayLike, benchmark: float = 0.0) -> float:
    """PSR of a return series against a per-period benchmark Sharpe, with its own skew and kurtosis."""
    r = _returns(returns)
    sr = sharpe_per_period(r)
    if r.size < 4 or math.isnan(sr):
        return math.nan
    return probabilistic_sharpe_ratio(sr, r.size, skewness(r), kurtosis(r), benchmark)


def deflated_sharpe_ratio(returns: npt.ArrayLike, n_trials: int, trial_sharpe_std: float) -> float:
    """DSR of a return series picked among n_trials whose per-period Sharpes have this std.

    The deflated Sharpe ratio (Bailey & Lopez de Prado 2014) is the probability that the
    true per-period Sharpe ratio of the returns exceeds the best Sharpe that n_trials
    strategies *without* skill would show by luck::

        SR0 = std * ((1 - g) * z(1 - 1/N) + g * z(1 - 1/(N e)))   g = 0.5772 (Euler), z = normal quantile
        DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

    with SR, skew and kurt of the T out-of-sample returns. N counts every configuration
    ever tried. A DSR of 0.95 or more is called significant here.
    """
    if not (math.isfinite(trial_sharpe_std) and trial_sharpe_std >= 0):
        trial_sharpe_std = 0.0
    return psr_from_returns(returns, expected_max_sharpe(n_trials, trial_sharpe_std ** 2))


def composite_score(metrics: Mapping[str, object]) -> float:
    """One number to rank strategies by, from out-of-sample metrics (higher is better).

    ``metrics`` needs ``sharpe`` (annualised, out of sample), and uses ``calmar``,
    ``max_drawdown`` (<= 0), ``n_trades`` and ``dsr`` when present::

        S = clip(sharpe, -3, 3) / 3                 NaN or missing -> 0
        C = clip(calmar, -3, 3) / 3                 NaN or missing -> 0
        D = 2 * dsr - 1                             in [-1, 1]; NaN or missing -> 0
        raw = 0.4 * S + 0.2 * C + 0.4 * D
        raw -= 1.0 * max(0, |max_drawdown| - 0.20)  drawdowns deeper than 20 % cost extra
        score = raw * min(1, n_trades / 30)  if raw > 0 else raw

    The last line shrinks a positive score backed by fewer than 30 trades (too few to trust)
    but never softens a negative one. The result lies in about [-1.8, 1].
    """
    cap = SCORE_RATIO_CAP
    sharpe = finite_or(metrics.get("sharpe"), 0.0)
    calmar = finite_or(metrics.get("calmar"), 0.0)
    dsr = finite_or(metrics.get("dsr"), 0.5)
    mdd = abs(finite_or(metrics.get("max_drawdown"), 0.0))
    n_trades = max(finite_or(metrics.get("n_trades"), 0.0), 0.0)

    raw = (SCORE_SHARPE_WEIGHT * min(max(sharpe, -cap), cap) / cap
           + SCORE_CALMAR_WEIGHT * min(max(calmar, -cap), cap) / cap
           + SCORE_DSR_WEIGHT * (2.0 * min(max(dsr, 0.0), 1.0) - 1.0))
    raw -= SCORE_DRAWDOWN_PENALTY * max(0.0, mdd - SCORE_DRAWDOWN_TOLERANCE)
    if raw > 0:
        raw *= min(1.0, n_trades / SCORE_MIN_TRADES)
    return float(raw)
