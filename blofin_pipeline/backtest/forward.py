"""The forward record: what a promoted strategy does on bars that did not exist when it was chosen.

Which bars: run date D's forward bars are those that closed after the previous run's data
end and by D's own, i.e. open times in ``[data_end - RUN_INTERVAL, data_end)`` (the DAG runs
once a day). They depend on D alone, so dates run in any order give the same rows.

Positions: the position decided at a bar's close comes from the candles up to that bar only:
the strategy is called on the prefix ending at that bar and its last value is taken. The
prefix starts at a fixed anchor (the start of the scoring window on the promotion date), so
the same bar always gets the same position, whichever date computes it. The position
decided at the bar just before the span is held over the span's first bar.

Returns: ``run_backtest`` over that bar and the span's bars with the run's fee and slippage.
Its per-bar returns depend only on the position before, the position after and the price
move, so a date's returns are exactly those a single backtest over the whole record gives.
On the first date after promotion the record also keeps the bar before the span, where the
position is entered from flat (its cost is the first entry of the record).

Decay: the backtest at promotion expected an annualised Sharpe ratio S on each symbol. The
decay probability is the probabilistic Sharpe ratio of the forward returns against S (per
bar): the probability that the strategy's true forward Sharpe reaches what the backtest
promised. Below ``DECAY_SIGNIFICANCE`` the forward record contradicts the backtest.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.backtest import stats
from blofin_pipeline.backtest.engine import run_backtest
from blofin_pipeline.costs import Costs
from blofin_pipeline.numeric import finite_or_none
from blofin_pipeline.timeframes import periods_per_year

RUN_INTERVAL = pd.Timedelta(days=1)   # one run a day: the forward span of a date
# Decay probability below this: the record contradicts the backtest. Strict, because the
# test is repeated every day on a growing record (at 0.05, a strategy exactly as good as its
# backtest would be flagged by chance far more often than one time in twenty).
DECAY_SIGNIFICANCE = 0.01
MIN_DECAY_BARS = 20                   # forward bars needed before the decay test speaks
BAR_FIELDS = ("ts", "close", "position", "return")   # one stored bar: open time (ms), close, decided position, return

SignalFn = Callable[[pd.DataFrame], pd.Series]


def forward_span(data_end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Open times [start, end) of the bars that arrived since the previous run."""
    return data_end - RUN_INTERVAL, data_end


def anchor_of(data_end: pd.Timestamp, run_date: str, promoted_on: str, window_days: int) -> pd.Timestamp:
    """Where the candles every position of a version is decided from begin: the start of the
    scoring window on its promotion date (``run_date``'s data end, moved back to that date);
    with ``window_days`` 0 (the whole stored history) the first stored candle."""
    if window_days == 0:
        return pd.Timestamp(0, tz="UTC")
    return data_end - (pd.Timestamp(run_date) - pd.Timestamp(promoted_on)) - pd.Timedelta(days=window_days)


def next_run_date(run_date: str) -> str:
    """The run date after ``run_date`` (YYYY-MM-DD)."""
    return (pd.Timestamp(run_date) + RUN_INTERVAL).strftime("%Y-%m-%d")


def decided_positions(signal: SignalFn, candles: pd.DataFrame, first: int) -> np.ndarray:
    """The position decided at the close of each bar from ``first`` on, each from the candles
    up to that bar only (``signal`` sees the prefix ending at the bar; its last value counts)."""
    if not 0 <= first < len(candles):
        raise ValueError(f"first bar {first} outside the {len(candles)} candles")
    return np.array([float(signal(candles.iloc[: i + 1]).iloc[-1]) for i in range(first, len(candles))])


def forward_day(signal: SignalFn, candles: pd.DataFrame, span_start: pd.Timestamp, costs: Costs, *,
                entry: bool) -> pd.DataFrame | None:
    """The forward bars of one date on one symbol: close, decided position and return after costs.

    ``candles`` run from the anchor to the date's data end. Returns None when no bar
    arrived in the span. With ``entry`` (the first date after promotion) the bar before the
    span is kept, with the cost of entering its position from flat as its return.
    """
    start = int(candles.index.searchsorted(span_start))
    if start >= len(candles):
        return None
    first = max(start - 1, 0)
    frame = candles.iloc[first:]
    positions = decided_positions(signal, candles, first)
    result = run_backtest(frame, positions, costs.fee, costs.slippage, timeframe=costs.timeframe)
    bars = pd.DataFrame({"close": frame["close"].to_numpy(), "position": positions,
                         "return": result.returns.to_numpy()}, index=frame.index)
    return bars if entry or start == 0 else bars.iloc[1:]


def bars_to_rows(bars: pd.DataFrame) -> list[list[float]]:
    """Bars as stored: ``[[open_ms, close, position, return], ...]``."""
    ms = bars.index.as_unit("ms").asi8
    return [[int(t), float(c), float(p), float(r)]
            for t, c, p, r in zip(ms, bars["close"], bars["position"], bars["return"])]


def rows_to_bars(rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Stored bars back to a frame on a UTC DatetimeIndex (ts sorted, the last copy of a bar kept)."""
    frame = pd.DataFrame(list(rows), columns=list(BAR_FIELDS))
    frame.index = pd.to_datetime(frame.pop("ts").astype("int64"), unit="ms", utc=True)
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame.astype("float64")


def trade_count(positions: np.ndarray) -> int:
    """Trades in a run of positions: runs of non-zero positions of one sign (a flip opens a new one)."""
    p = np.asarray(positions, dtype=np.float64)
    prev = np.concatenate(([0.0], p[:-1]))
    return int(np.count_nonzero((p != 0) & ((prev == 0) | (prev * p < 0))))


def _moments(returns: np.ndarray) -> tuple[float, float, float]:
    """(per-bar Sharpe, skew, kurtosis); a record that never moved has Sharpe 0 (normal moments)."""
    sharpe = stats.sharpe_per_period(returns)
    if math.isnan(sharpe) and returns.size >= 2 and not np.any(returns):
        return 0.0, 0.0, 3.0
    return sharpe, stats.skewness(returns), stats.kurtosis(returns)


def decay_probability(returns: np.ndarray, expected_sharpe: float | None, ppy: float) -> float:
    """PSR of the forward returns against the backtest's annualised Sharpe at promotion (per bar):
    the probability that the true forward Sharpe reaches it. NaN without enough bars or expectation."""
    expected = finite_or_none(expected_sharpe)
    r = np.asarray(returns, dtype=np.float64)
    if expected is None or r.size < MIN_DECAY_BARS:
        return math.nan
    sharpe, skew, kurt = _moments(r)
    if not all(math.isfinite(x) for x in (sharpe, skew, kurt)):
        return math.nan
    return stats.probabilistic_sharpe_ratio(sharpe, r.size, skew, kurt, benchmark=expected / math.sqrt(ppy))


def record_metrics(bars: pd.DataFrame, timeframe: str, expected_sharpe: float | None) -> dict[str, Any]:
    """Metrics of one symbol's whole forward record (``rows_to_bars`` of every date, oldest first).

    Those of ``run_backtest`` that the returns and positions give (total_return, cagr, sharpe,
    sortino, volatility, max_drawdown, calmar, n_trades, exposure, turnover); ``psr`` against
    zero; ``decay_p``; and ``score``, the composite score with ``psr`` standing in for the
    deflated Sharpe ratio (nothing was selected on these bars: one trial).
    """
    ppy = periods_per_year(timeframe)
    r = bars["return"].to_numpy()
    p = bars["position"].to_numpy()
    out: dict[str, Any] = {
        "n_bars": int(r.size), "total_return": m.total_return(r), "cagr": m.cagr(r, ppy),
        "sharpe": m.sharpe_ratio(r, ppy), "sortino": m.sortino_ratio(r, ppy),
        "volatility": m.annual_volatility(r, ppy), "max_drawdown": m.max_drawdown(r),
        "calmar": m.calmar_ratio(r, ppy), "n_trades": trade_count(p), "exposure": m.exposure(p),
        "turnover": m.turnover(p, ppy), "psr": stats.psr_from_returns(r),
        "expected_sharpe": finite_or_none(expected_sharpe), "decay_p": decay_probability(r, expected_sharpe, ppy),
    }
    out["score"] = stats.composite_score({**out, "dsr": out["psr"]})
    out["deflated_sharpe"] = out["psr"]
    return out
