"""Which strategies need the tuner, and why they fail.

`pick_underperformers` ranks the portfolio by score; `diagnose` reads a backtest for
failure patterns (drawdown clusters, overtrading and fee drag, regime mismatch, low win
rate), each finding stating its numbers so the tuner's rationale and the LLM can quote them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.costs import Costs
from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.research.holdout import SignalFn, split_candles
from blofin_pipeline.research.regime import label_regimes

# Diagnosis thresholds (each finding states its numbers).
DEEP_DRAWDOWN = -0.15       # max drawdown at or below this is worth a word
LONG_UNDERWATER = 0.25      # worst drawdown episode longer than this share of the bars
FEE_DRAG = 0.5              # fees above this share of the gross profit
TRADES_PER_100_BARS = 5.0   # more round trips than this per 100 bars is overtrading
LOW_WIN_RATE = 0.35
MIN_WIN_RATE_TRADES = 5     # fewer trades than this say nothing about the win rate
REGIME_MIN_BARS = 50        # a regime needs this many bars to be judged
REGIME_T_STAT = 2.0         # a regime's mean return below -this t-statistic is a clear loss
REGIME_MIN_CANDLES = 64     # fewer bars than this: no regime split


def pick_underperformers(score_rows: Sequence[Mapping[str, Any]], k: int, *,
                         score_key: str = "score") -> list[dict[str, Any]]:
    """The `k` strategies with the lowest mean score over their rows (one row per symbol).

    Rows need "name" and `score_key`; rows with a missing or non-finite score count as
    the worst (a strategy that cannot be scored needs attention first). Ties break on name.
    Returns [{"name", "score", "n_rows"}], worst first.
    """
    if k < 0:
        raise ConfigError(f"pick_underperformers: k must be >= 0, got {k}")
    by_name: dict[str, list[float]] = {}
    for row in score_rows:
        name = row.get("name")
        if not name:
            raise ConfigError(f"pick_underperformers: score row {dict(row)!r} has no name")
        value = row.get(score_key)
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = float("nan")
        by_name.setdefault(str(name), []).append(value if math.isfinite(value) else -math.inf)
    ranked = sorted(((float(np.mean(v)), n, len(v)) for n, v in by_name.items()), key=lambda t: (t[0], t[1]))
    return [{"name": n, "score": s, "n_rows": c} for s, n, c in ranked[:k]]


def _num(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _drawdown_episodes(equity: np.ndarray) -> list[tuple[int, int, float]]:
    """(start, end, depth) of every underwater episode of an equity curve."""
    peak = np.maximum.accumulate(equity)
    under = equity < peak
    episodes = []
    i, n = 0, len(equity)
    while i < n:
        if under[i]:
            j = i
            while j < n and under[j]:
                j += 1
            depth = float(np.min(equity[i:j] / peak[i:j]) - 1.0)
            episodes.append((i - 1 if i else 0, j - 1, depth))
            i = j
        else:
            i += 1
    return episodes


def _drawdown_cluster(metrics: Mapping[str, Any], returns: pd.Series | None) -> list[str]:
    """How deep, how long, and how many separate deep episodes."""
    max_dd = _num(metrics, "max_drawdown")
    if returns is not None and len(returns) > 1:
        equity = np.cumprod(1.0 + returns.fillna(0.0).to_numpy())
        episodes = _drawdown_episodes(equity)
        deep = [e for e in episodes if e[2] <= DEEP_DRAWDOWN / 2]
        worst = min(episodes, key=lambda e: e[2]) if episodes else None
        if worst is not None and (worst[2] <= DEEP_DRAWDOWN or (worst[1] - worst[0]) / len(equity) > LONG_UNDERWATER):
            return [f"drawdown cluster: worst drawdown {worst[2]:.1%} lasting {worst[1] - worst[0]} bars "
                    f"({(worst[1] - worst[0]) / len(equity):.0%} of the sample), "
                    f"{len(deep)} episodes deeper than {DEEP_DRAWDOWN / 2:.1%}"]
    elif max_dd is not None and max_dd <= DEEP_DRAWDOWN:
        return [f"drawdown cluster: max drawdown {max_dd:.1%}"]
    return []


def _overtrading(metrics: Mapping[str, Any], n_bars: int | None) -> list[str]:
    n_trades = _num(metrics, "n_trades")
    fees = _num(metrics, "fees_paid")
    total = _num(metrics, "total_return")
    if n_trades is None or not n_bars:
        return []
    per_100 = 100.0 * n_trades / n_bars
    gross = (total or 0.0) + (fees or 0.0)
    # Fee drag: the costs ate more than FEE_DRAG of a gross profit (with a gross loss the
    # fees are not the cause, the rule is).
    drag = fees is not None and gross > 0 and fees > FEE_DRAG * gross
    if per_100 <= TRADES_PER_100_BARS and not drag:
        return []
    return [f"overtrading and fee drag: {int(n_trades)} trades in {n_bars} bars "
            f"({per_100:.1f} per 100 bars), fees {fees or 0.0:.1%} of equity against a gross "
            f"return of {gross:+.1%} (net {total or 0.0:+.1%})"]


def _regime_mismatch(returns: pd.Series | None, candles: pd.DataFrame | None) -> list[str]:
    """Returns split by the trend state of the bar that held the position."""
    if returns is None or candles is None or len(candles) != len(returns) or len(candles) <= REGIME_MIN_CANDLES:
        return []
    regimes = label_regimes(candles)["trend"].shift(1).reindex(returns.index)
    rets = returns.fillna(0.0)
    stats = {}
    for state in ("up", "down", "range"):
        part = rets[regimes == state]
        if len(part) >= REGIME_MIN_BARS and part.std() > 0:
            stats[state] = (float(part.mean() / part.std() * math.sqrt(len(part))), len(part))
    losers = {s: v for s, v in stats.items() if v[0] < -REGIME_T_STAT}
    winners = {s: v for s, v in stats.items() if v[0] > 0.0}
    if not (losers and winners):
        return []
    loss_text = ", ".join(f"{s} (t-stat {v[0]:.1f} over {v[1]} bars)" for s, v in sorted(losers.items()))
    win_text = ", ".join(f"{s} (t-stat {v[0]:.1f})" for s, v in sorted(winners.items()))
    return [f"regime mismatch: loses in {loss_text}; earns in {win_text}"]


def _low_win_rate(metrics: Mapping[str, Any], trades: pd.DataFrame | None) -> list[str]:
    """A low win rate, with the payoff that would have to compensate."""
    win_rate = _num(metrics, "win_rate")
    profit_factor = _num(metrics, "profit_factor")
    n_trades = _num(metrics, "n_trades")
    if win_rate is None or win_rate >= LOW_WIN_RATE or (n_trades or 0) < MIN_WIN_RATE_TRADES:
        return []
    pf = f", profit factor {profit_factor:.2f}" if profit_factor is not None else ""
    avg = ""
    if trades is not None and len(trades) and "return" in trades.columns:
        wins = trades.loc[trades["return"] > 0, "return"]
        losses = trades.loc[trades["return"] <= 0, "return"]
        if len(wins) and len(losses):
            avg = f", average win {wins.mean():+.2%} vs average loss {losses.mean():+.2%}"
    return [f"low win rate: {win_rate:.0%} of {int(n_trades or 0)} trades win{pf}{avg}"]


def diagnose(
    result: Any = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    trades: pd.DataFrame | None = None,
    returns: pd.Series | None = None,
    candles: pd.DataFrame | None = None,
    label: str = "",
) -> list[str]:
    """Failure patterns of a backtest, each with its numbers.

    Give a `run_backtest` result (its metrics, trades and returns are used) or the
    pieces. With `candles` (the backtest's), returns are split by the regime of each bar
    to find a regime mismatch. Patterns: drawdown clusters, overtrading and fee drag,
    regime mismatch, low win rate. An empty list means nothing alarming.
    """
    if result is not None:
        metrics = metrics if metrics is not None else getattr(result, "metrics", None)
        trades = trades if trades is not None else getattr(result, "trades", None)
        returns = returns if returns is not None else getattr(result, "returns", None)
    metrics = dict(metrics or {})
    n_bars = len(returns) if returns is not None else None
    found = (_drawdown_cluster(metrics, returns) + _overtrading(metrics, n_bars)
             + _regime_mismatch(returns, candles) + _low_win_rate(metrics, trades))
    prefix = f"{label}: " if label else ""
    return [prefix + finding for finding in found]


#: Metrics shown beside the diagnosis in the tune prompt (from the same backtests).
PROMPT_METRICS = ("sharpe", "total_return", "max_drawdown", "win_rate", "profit_factor", "n_trades", "turnover",
                  "fees_paid")


def diagnose_tuning_part(fn: SignalFn, params: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame],
                         *, holdout: float, costs: Costs) -> list[str]:
    """`diagnose` of `params` on each symbol's tuning part (never the held-out part)."""
    return tuning_part_report(fn, params, candles_by_symbol, holdout=holdout, costs=costs)["diagnosis"]


def tuning_part_report(fn: SignalFn, params: Mapping[str, Any], candles_by_symbol: Mapping[str, pd.DataFrame],
                       *, holdout: float, costs: Costs) -> dict[str, Any]:
    """The diagnosis of `params` on each symbol's tuning part, with the metrics of the same
    backtests and the span they cover: what the tune prompt shows side by side."""
    found: list[str] = []
    metrics: dict[str, dict[str, Any]] = {}
    spans: list[str] = []
    for symbol, candles in candles_by_symbol.items():
        early, _ = split_candles(candles, holdout)
        result = run_backtest(early, fn(early, dict(params)), fee=costs.fee, slippage=costs.slippage,
                              timeframe=costs.timeframe)
        found += diagnose(result, candles=early, label=symbol)
        metrics[symbol] = {k: result.metrics.get(k) for k in PROMPT_METRICS}
        spans.append(f"{symbol} {early.index[0]:%Y-%m-%d} to {early.index[-1]:%Y-%m-%d} ({len(early)} bars)")
    span = f"the first {1 - holdout:.0%} of each symbol's history (" + "; ".join(spans) + ")"
    return {"diagnosis": found, "metrics": metrics, "span": span}
