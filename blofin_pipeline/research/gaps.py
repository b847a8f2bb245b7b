"""Coverage gaps of the portfolio: (category x regime x symbol) cells nobody fills well.

A *cell* is one strategy category on one symbol in that symbol's current regime (the
regime of `regime.detect_regime`, e.g. trend "up", volatility "high"). A strategy
*covers* a cell when it belongs to the category and its score on that symbol is at
least ``min_score`` (the composite out-of-sample score of the scoring step; a strategy
may also carry per-regime scores, which are used when they name the cell's regime).

Every cell that no strategy covers is a gap. Gaps are ranked by

    priority = fit(category, regime) * (1 + deficit) + EMPTY_CATEGORY_BONUS * empty

- ``fit`` (0..1, table ``REGIME_FIT``): how well the category suits the regime, so that a
  missing trend follower in a trending market outranks a missing one in a flat market;
- ``deficit`` = min(1, max(0, min_score - best score in the cell)) / scale: how far the
  best strategy of the category falls short (1 when the category has no strategy at all
  on the symbol);
- ``empty`` = 1 when the category has no strategy anywhere in the portfolio.

Ties break on category, then symbol, so the ranking is deterministic.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.strategies import CATEGORIES

logger = logging.getLogger(__name__)

EMPTY_CATEGORY_BONUS = 0.5
DEFAULT_FIT = 0.5

#: How well a category suits a trend state and a volatility level (0..1); the cell's fit
#: is the mean of the two. Trend followers want trends, mean reversion wants ranges,
#: breakouts and volatility strategies want volatility to expand from calm, volume
#: strategies are regime-neutral.
TREND_FIT: Mapping[str, Mapping[str, float]] = {
    "trend": {"up": 1.0, "down": 1.0, "range": 0.2},
    "momentum": {"up": 1.0, "down": 1.0, "range": 0.3},
    "mean_reversion": {"up": 0.3, "down": 0.3, "range": 1.0},
    "breakout": {"up": 0.6, "down": 0.6, "range": 0.8},
    "volatility": {"up": 0.5, "down": 0.5, "range": 0.7},
    "volume": {"up": 0.6, "down": 0.6, "range": 0.6},
}
VOL_FIT: Mapping[str, Mapping[str, float]] = {
    "trend": {"low": 0.5, "normal": 0.8, "high": 0.7},
    "momentum": {"low": 0.4, "normal": 0.8, "high": 0.9},
    "mean_reversion": {"low": 0.8, "normal": 0.8, "high": 0.4},
    "breakout": {"low": 1.0, "normal": 0.7, "high": 0.5},
    "volatility": {"low": 0.9, "normal": 0.6, "high": 1.0},
    "volume": {"low": 0.5, "normal": 0.7, "high": 0.8},
}


def regime_fit(category: str, trend: str, volatility: str) -> float:
    """Fit (0..1) of a category to a regime; DEFAULT_FIT for unknown labels."""
    t = TREND_FIT.get(category, {}).get(trend, DEFAULT_FIT)
    v = VOL_FIT.get(category, {}).get(volatility, DEFAULT_FIT)
    return (t + v) / 2.0


def _score_on(strategy: Mapping[str, Any], symbol: str, regime_key: str) -> float | None:
    """A strategy's score on a symbol, preferring a score for the exact regime."""
    by_regime = strategy.get("regime_scores") or {}
    per_symbol = by_regime.get(symbol) if isinstance(by_regime, Mapping) else None
    if isinstance(per_symbol, Mapping) and regime_key in per_symbol:
        value = per_symbol[regime_key]
    else:
        value = (strategy.get("scores") or {}).get(symbol)
    if isinstance(value, Mapping):
        value = value.get("score")
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _cell_gap(category: str, symbol: str, trend: str, volatility: str, members: Sequence[Mapping[str, Any]], *,
              empty: bool, min_score: float, score_scale: float) -> dict[str, Any] | None:
    """The gap of one (category, symbol in its regime) cell, or None when a member covers it."""
    regime_key = f"{trend}/{volatility}"
    scored = [(s["name"], _score_on(s, symbol, regime_key)) for s in members]
    scored = [(n, v) for n, v in scored if v is not None]
    best_name, best = max(scored, key=lambda item: (item[1], item[0])) if scored else (None, None)
    if best is not None and best >= min_score:
        return None
    deficit = 1.0 if best is None else min(1.0, (min_score - best) / score_scale)
    fit = regime_fit(category, trend, volatility)
    priority = fit * (1.0 + deficit) + (EMPTY_CATEGORY_BONUS if empty else 0.0)
    if empty:
        reason = f"no {category} strategy in the portfolio"
    elif best is None:
        reason = f"no {category} strategy scored on {symbol}"
    else:
        reason = f"best {category} strategy on {symbol} is {best_name} with score {best:.3f} < {min_score:g}"
    return {
        "category": category,
        "symbol": symbol,
        "trend": trend,
        "volatility": volatility,
        "regime": regime_key,
        "priority": round(priority, 6),
        "fit": round(fit, 6),
        "deficit": round(deficit, 6),
        "best_strategy": best_name,
        "best_score": best,
        "n_strategies": len(scored),
        "reason": reason + f" (regime {regime_key})",
    }


def coverage_gaps(
    strategies: Sequence[Mapping[str, Any]],
    regimes: Mapping[str, Mapping[str, Any]],
    symbols: Iterable[str],
    categories: Iterable[str] = CATEGORIES,
    *,
    min_score: float = 0.0,
    score_scale: float = 1.0,
) -> list[dict[str, Any]]:
    """Uncovered (category x regime x symbol) cells, highest priority first.

    strategies: dicts with "name", "category" and "scores" {symbol: score (or {"score": x})},
        optionally "regime_scores" {symbol: {"up/high": score, ...}}.
    regimes: {symbol: detect_regime(...) dict}; a symbol without one counts as unknown.
    Returns dicts: category, symbol, trend, volatility, regime, priority, fit, deficit,
    best_strategy, best_score, n_strategies (of the category on that symbol), reason.
    """
    if score_scale <= 0:
        raise ConfigError(f"coverage_gaps: score_scale must be positive, got {score_scale!r}")
    categories = list(dict.fromkeys(categories))
    symbols = list(dict.fromkeys(symbols))
    for strategy in strategies:
        if "name" not in strategy or "category" not in strategy:
            raise ConfigError(f"coverage_gaps: strategy entry {dict(strategy)!r} needs 'name' and 'category'")
    present = {s["category"] for s in strategies}

    gaps: list[dict[str, Any]] = []
    for symbol in symbols:
        regime = regimes.get(symbol) or {}
        trend = str(regime.get("trend", "unknown"))
        volatility = str(regime.get("volatility", "unknown"))
        for category in categories:
            members = [s for s in strategies if s["category"] == category]
            gap = _cell_gap(category, symbol, trend, volatility, members, empty=category not in present,
                            min_score=min_score, score_scale=score_scale)
            if gap is not None:
                gaps.append(gap)
    gaps.sort(key=lambda g: (-g["priority"], g["category"], g["symbol"]))
    logger.info("coverage gaps: %d of %d cells uncovered", len(gaps), len(symbols) * len(categories))
    return gaps


def gap_categories(gaps: Sequence[Mapping[str, Any]], n: int) -> list[str]:
    """The first `n` distinct categories in gap priority order."""
    out: list[str] = []
    for gap in gaps:
        if gap["category"] not in out:
            out.append(gap["category"])
        if len(out) == n:
            break
    return out
