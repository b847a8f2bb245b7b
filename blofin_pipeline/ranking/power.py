"""Power: what a date's deflated Sharpe ratios can detect, so "not significant" is read
correctly (issue 11, decision 7).

For a run date: N, the trial count of the date (`store.registry.trial_count`: every
(item, symbol) out-of-sample series evaluated on or before it), T, the out-of-sample bars
of its results (the most common count: every item is scored on the same span), and the
annualised Sharpe an item would need for DSR 0.95 at that N and T (`backtest.stats.power`,
trial dispersion 1/sqrt(T)). Per item: its minimum track record length for its own Sharpe
(`backtest.stats.track_records`): the days of returns at that Sharpe needed for PSR 0.95
against 0 (Bailey & Lopez de Prado's MinTRL) and for DSR 0.95 at N.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.backtest import stats
from blofin_pipeline.store.registry import trial_count
from blofin_pipeline.store.results import oos_bars_on
from blofin_pipeline.timeframes import DAYS_PER_YEAR, periods_per_year

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

TRACK_RECORD_KEYS = ("min_trl_days", "dsr_trl_days")


def day_power(store: Store, run_date: str) -> dict[str, Any] | None:
    """N, T and the Sharpe needed for DSR 0.95 on the run date; None before any result."""
    bars = oos_bars_on(store, run_date)
    if not bars:
        return None
    timeframe = bars[0][0]
    n_obs = Counter(b for _, b in bars).most_common(1)[0][0]
    ppy = periods_per_year(timeframe)
    out = stats.power(max(trial_count(store, run_date), 1), n_obs, ppy)
    return {**out, "timeframe": timeframe, "periods_per_year": ppy, "oos_days": n_obs * DAYS_PER_YEAR / ppy,
            "text": power_text(out, ppy)}


def power_text(p: Mapping[str, Any], ppy: float) -> str:
    """One line: N, T and the Sharpe needed."""
    scale = ppy ** 0.5
    return (f"N = {p['n_trials']} trials ((item, symbol) out-of-sample series), T = {p['oos_bars']} "
            f"out-of-sample bars ({p['oos_bars'] * DAYS_PER_YEAR / ppy:.0f} days): DSR 0.95 needs an annualised "
            f"Sharpe of {p['required_sharpe_annual']:.2f} (the best of N no-skill trials shows "
            f"{p['expected_max_sharpe'] * scale:.2f} by luck)")


def track_record_days(sharpe_annual: float | None, power: Mapping[str, Any] | None) -> dict[str, float | None]:
    """An item's MinTRL (vs 0) and its track record for DSR 0.95 at the date's N, in days."""
    if power is None:
        return dict.fromkeys(TRACK_RECORD_KEYS)
    t = stats.track_records(sharpe_annual, power["n_trials"], power["periods_per_year"])
    return {k: t[k] for k in TRACK_RECORD_KEYS}
