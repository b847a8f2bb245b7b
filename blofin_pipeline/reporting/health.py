"""Portfolio health of the day's kept strategies: coverage by category and symbol,
concentration (category shares, their Herfindahl-Hirschman index and its effective
number 1/HHI), drawdowns, significance by the deflated Sharpe ratio, and the flags."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from blofin_pipeline.backtest.stats import SIGNIFICANT_DSR
from blofin_pipeline.numeric import mean_of_finite

DEEP_DRAWDOWN = -0.25        # a kept strategy's worst drawdown at or below this is flagged
CONCENTRATION_SHARE = 0.5    # one category holding more than this share of the kept is flagged


def portfolio_health(registry: Sequence[Mapping[str, Any]], strategies: Sequence[Mapping[str, Any]],
                     kept: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Coverage by category and symbol, concentration, drawdowns, significance and the
    flags they raise; ``registry`` is the registry's size by category and status."""
    by_category = _by_category(registry, strategies, kept)
    shares = {cat: v["kept"] / len(kept) for cat, v in by_category.items() if kept and v["kept"]}
    hhi = sum(x * x for x in shares.values()) if shares else None
    top_category = max(shares, key=lambda c: (shares[c], c)) if shares else None
    drawdowns = sorted(({"strategy": s["item"], "max_drawdown": s["max_drawdown"], "symbol": s["worst_drawdown_symbol"]}
                        for s in kept if s["max_drawdown"] is not None), key=lambda d: d["max_drawdown"])
    health = {
        "kept": len(kept),
        "by_category": by_category,
        "by_symbol": _by_symbol(strategies, kept),
        "concentration": {"category_shares": shares, "top_category": top_category,
                          "top_category_share": shares.get(top_category) if top_category else None,
                          "hhi": hhi, "effective_categories": (1.0 / hhi) if hhi else None},
        "drawdowns": drawdowns,
        "mean_max_drawdown": mean_of_finite(d["max_drawdown"] for d in drawdowns),
        "worst_max_drawdown": drawdowns[0]["max_drawdown"] if drawdowns else None,
        "significant": sorted(s["item"] for s in strategies
                              if s["max_deflated_sharpe"] is not None and s["max_deflated_sharpe"] >= SIGNIFICANT_DSR),
        "thresholds": {"significant_dsr": SIGNIFICANT_DSR, "deep_drawdown": DEEP_DRAWDOWN,
                       "concentration_share": CONCENTRATION_SHARE},
    }
    health["flags"] = _flags(health, n_scored=len(strategies))
    return health


def _by_category(registry: Sequence[Mapping[str, Any]], strategies: Sequence[Mapping[str, Any]],
                 kept: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per category (registered or scored): kept, registered and active versions, the best kept."""
    by_category = {}
    for cat in sorted({r["category"] for r in registry} | {s["category"] for s in strategies}):
        mine = [s for s in kept if s["category"] == cat]
        best = max(mine, key=lambda s: s["score"] if s["score"] is not None else -math.inf, default=None)
        by_category[cat] = {
            "kept": len(mine),
            "registered": sum(int(r["n"]) for r in registry if r["category"] == cat),
            "active_in_registry": sum(int(r["n"]) for r in registry if r["category"] == cat and r["status"] == "active"),
            "best": best["item"] if best else None,
            "best_score": best["score"] if best else None,
        }
    return by_category


def _by_symbol(strategies: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scored symbol: how many kept strategies scored on it, how many positively, the best."""
    by_symbol = {}
    for sym in sorted({sym for s in strategies for sym in s["symbols"]}):
        scores = [(s["per_symbol"][sym]["score"], s["item"]) for s in kept if sym in s["per_symbol"]]
        finite = [(v, item) for v, item in scores if v is not None]
        best = max(finite, default=(None, None))
        by_symbol[sym] = {"kept_scored": len(scores), "positive": sum(1 for v, _ in finite if v > 0),
                          "mean_score": mean_of_finite(v for v, _ in finite), "best": best[1], "best_score": best[0]}
    return by_symbol


def _flags(health: Mapping[str, Any], *, n_scored: int) -> list[str]:
    """What in the health figures deserves a reader's attention, one sentence each."""
    flags = []
    if not n_scored:
        flags.append("no strategy was scored on this date")
    concentration, n_kept = health["concentration"], health["kept"]
    top_category, top_share = concentration["top_category"], concentration["top_category_share"]
    if top_category and top_share > CONCENTRATION_SHARE and n_kept > 1:
        flags.append(f"concentration: {top_share:.0%} of the kept strategies are {top_category}")
    empty = [c for c, v in health["by_category"].items() if v["kept"] == 0]
    if n_kept and empty:
        flags.append(f"no kept strategy in categories: {', '.join(empty)}")
    for sym, v in health["by_symbol"].items():
        if v["kept_scored"] and v["positive"] == 0:
            flags.append(f"no kept strategy has a positive score on {sym}")
    deep = [d for d in health["drawdowns"] if d["max_drawdown"] <= DEEP_DRAWDOWN]
    if deep:
        flags.append(f"{len(deep)} kept strateg{'y' if len(deep) == 1 else 'ies'} with max drawdown at or below "
                     f"{DEEP_DRAWDOWN:.0%} (worst {deep[0]['strategy']} {deep[0]['max_drawdown']:.1%})")
    if n_scored and not health["significant"]:
        flags.append(f"no strategy is significant by the deflated Sharpe ratio (>= {SIGNIFICANT_DSR}): "
                     "the best scores may be luck among many trials")
    return flags
