"""The forward record in the ranking: one summary per strategy version, the blend of its
backtest value with its forward value, and the contradictions that cost a strategy its place.

Summary of a version (from its ``forward_returns`` rows up to a date): each symbol's whole
record goes through `backtest.forward.record_metrics`; the version's figures are means over
its symbols (as the ranker's backtest values are), except ``worst_drawdown``, the worst
symbol's. Per-symbol probabilities (``psr``, ``decay_p``) are combined as
``Phi(mean_i Phi^-1(p_i))``: averaging the z-scores instead of adding them (Stouffer)
assumes the symbols move together, the cautious reading for crypto.

Blend rule (docs/RESEARCH-PROTOCOL.md, "Forward record"), for the ranking metric::

    w     = days / (days + FORWARD_HALF_WEIGHT_DAYS)        days = run dates tracked
    value = (1 - w) * backtest value + w * forward value

A version without a forward value for the metric ranks on its backtest alone. A version
whose combined decay probability is below ``DECAY_SIGNIFICANCE`` has a forward record that
contradicts its backtest: it is not kept, whatever its rank.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest.forward import (
    DECAY_SIGNIFICANCE,
    record_metrics,
    rows_to_bars,
)
from blofin_pipeline.backtest.stats import NORMAL
from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.store.forward import forward_rows_until

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

FORWARD_HALF_WEIGHT_DAYS = 30   # days of forward record at which it weighs as much as the backtest
EQUITY_POINTS = 300             # points kept of a forward equity curve, for the report's chart
PROBABILITY_CLIP = 1e-12        # keeps Phi^-1 finite at probabilities of exactly 0 or 1
BLENDED_METRICS = ("score", "sharpe", "deflated_sharpe", "sortino", "total_return", "cagr", "max_drawdown",
                   "calmar", "exposure")


@dataclass(frozen=True)
class ForwardSummary:
    """A strategy version's forward record up to a date."""

    item: str                          # name@version
    promoted_on: str
    code_hash: str
    days: int                          # run dates tracked
    first_date: str
    last_date: str
    symbols: tuple[str, ...]
    n_bars: int                        # bars recorded, summed over symbols
    metrics: dict[str, float | None]   # means over symbols
    worst_drawdown: float | None
    psr: float | None                  # P(true forward Sharpe > 0), combined over symbols
    expected_sharpe: float | None      # mean backtest Sharpe at promotion (annualised)
    decay_p: float | None              # P(true forward Sharpe reaches the expectation), combined
    synthetic: bool
    equity: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    @property
    def weight(self) -> float:
        return forward_weight(self.days)

    @property
    def decayed(self) -> bool:
        return self.decay_p is not None and self.decay_p < DECAY_SIGNIFICANCE

    def contradiction(self) -> str | None:
        """Why the forward record contradicts the backtest, or None when it does not."""
        if not self.decayed:
            return None
        return (f"forward record contradicts its backtest: forward Sharpe {_fmt(self.metrics.get('sharpe'))} "
                f"over {self.days} day(s) against {_fmt(self.expected_sharpe)} expected at promotion on "
                f"{self.promoted_on} (decay probability {self.decay_p:.3g} < {DECAY_SIGNIFICANCE})")

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.item, "promoted_on": self.promoted_on, "code_hash": self.code_hash,
                "days": self.days, "first_date": self.first_date, "last_date": self.last_date,
                "symbols": list(self.symbols), "n_bars": self.n_bars,
                "forward_return": self.metrics.get("total_return"), "sharpe": self.metrics.get("sharpe"),
                "score": self.metrics.get("score"), "max_drawdown": self.worst_drawdown, "psr": self.psr,
                "expected_sharpe": self.expected_sharpe, "decay_p": self.decay_p, "decayed": self.decayed,
                "weight": self.weight, "synthetic": self.synthetic}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def forward_weight(days: int) -> float:
    """Weight of the forward record in the blend: days / (days + FORWARD_HALF_WEIGHT_DAYS)."""
    return days / (days + FORWARD_HALF_WEIGHT_DAYS) if days > 0 else 0.0


def combine_probabilities(probabilities: Iterable[Any]) -> float | None:
    """Phi(mean of Phi^-1(p)) over the finite probabilities; None when there is none."""
    ps = [p for p in (finite_or_none(x) for x in probabilities) if p is not None]
    if not ps:
        return None
    z = [NORMAL.inv_cdf(min(max(p, PROBABILITY_CLIP), 1.0 - PROBABILITY_CLIP)) for p in ps]
    return NORMAL.cdf(sum(z) / len(z))


def _equity(per_symbol: Sequence[pd.DataFrame]) -> tuple[tuple[str, float], ...]:
    """Mean over symbols of each symbol's equity since promotion (start 1), downsampled."""
    curves = [(1.0 + b["return"]).cumprod() for b in per_symbol]
    mean = pd.concat(curves, axis=1).sort_index().ffill().fillna(1.0).mean(axis=1)
    step = max(1, math.ceil(len(mean) / EQUITY_POINTS))
    keep = np.unique(np.r_[np.arange(0, len(mean), step), len(mean) - 1]) if len(mean) else []
    return tuple((ts.isoformat(), round(float(v), 6)) for ts, v in mean.iloc[keep].items())


def summarize(item: str, rows: Sequence[Mapping[str, Any]]) -> ForwardSummary:
    """The summary of one version from its forward rows (any order, one or more symbols)."""
    by_symbol: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["symbol"], r["run_date"])):
        by_symbol.setdefault(r["symbol"], []).append(r)
    bars, metrics = [], []
    for symbol_rows in by_symbol.values():
        stored = [b for r in symbol_rows for b in (json.loads(r["bars"]) if isinstance(r["bars"], str) else r["bars"])]
        bars.append(rows_to_bars(stored))
        metrics.append(record_metrics(bars[-1], symbol_rows[-1]["timeframe"], symbol_rows[-1]["expected_sharpe"]))
    dates = sorted({r["run_date"] for r in rows})
    latest = max(rows, key=lambda r: r["run_date"])
    drawdowns = [d for d in (finite_or_none(x["max_drawdown"]) for x in metrics) if d is not None]
    return ForwardSummary(
        item=item, promoted_on=latest["promoted_on"], code_hash=latest["code_hash"], days=len(dates),
        first_date=dates[0], last_date=dates[-1], symbols=tuple(by_symbol), n_bars=sum(x["n_bars"] for x in metrics),
        metrics={k: mean_of_finite(x[k] for x in metrics) for k in BLENDED_METRICS},
        worst_drawdown=min(drawdowns) if drawdowns else None,
        psr=combine_probabilities(x["psr"] for x in metrics),
        expected_sharpe=mean_of_finite(x["expected_sharpe"] for x in metrics),
        decay_p=combine_probabilities(x["decay_p"] for x in metrics),
        synthetic=any(bool(r["synthetic"]) for r in rows), equity=_equity(bars),
    )


def summarize_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, ForwardSummary]:
    """Summaries of every version in ``forward_returns`` rows, keyed by ``name@version``."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        grouped.setdefault(f"{r['strategy']}@{int(r['version'])}", []).append(r)
    return {item: summarize(item, rs) for item, rs in grouped.items()}


def forward_summaries(store: Store, run_date: str) -> dict[str, ForwardSummary]:
    """The forward record as it stood on ``run_date`` of every version tracked that date."""
    return summarize_rows(forward_rows_until(store, run_date))


def blend(values: Mapping[str, float | None], forward: Mapping[str, ForwardSummary], metric: str
          ) -> tuple[dict[str, float | None], dict[str, str]]:
    """Blended ranking values and, per version with a forward record, how the value was made."""
    out: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for item, backtest in values.items():
        summary = forward.get(item)
        out[item] = backtest
        if summary is None:
            continue
        ahead = finite_or_none(summary.metrics.get(metric))
        if ahead is None or finite_or_none(backtest) is None:
            notes[item] = f"backtest only; forward record of {summary.days} day(s) has no {metric}"
            continue
        w = summary.weight
        out[item] = (1.0 - w) * float(backtest) + w * ahead
        notes[item] = f"backtest {backtest:.4g} blended with forward {ahead:.4g} over {summary.days} day(s) at weight {w:.2f}"
    return out, notes


def contradictions(forward: Mapping[str, ForwardSummary]) -> dict[str, str]:
    """``{item: reason}`` of the versions whose forward record contradicts their backtest."""
    return {item: reason for item, s in forward.items() if (reason := s.contradiction()) is not None}
