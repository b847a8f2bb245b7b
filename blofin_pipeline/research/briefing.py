"""The day's research briefing: what every LLM call of the day is told before its task.

One plain dict, built from data that does not change during the day (the portfolio as the
day started and its scores, the market regime, history up to yesterday), so the design,
tune and review calls render it to the same bytes and share one cached prompt prefix
(`llm.prefix`). Keys: `run`, `portfolio` (strategies with mean and per-symbol scores,
coverage gaps), `regimes`, `top_performers`, `bottom_performers` (with metrics, params and
code), `archived` (recently archived strategies and why), `failed_changes` (recently
rejected candidates and tunes that did not improve), `categories`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from blofin_pipeline.research.designer import DesignContext, mean_score, performers

N_PROMPT_GAPS = 12        # coverage gaps quoted
N_ARCHIVED = 15           # recent archive decisions quoted
N_FAILED = 15             # recent failed changes quoted
REASON_CHARS = 240        # longest reason quoted
REGIME_KEYS = ("trend", "volatility", "efficiency_ratio", "ma_slope", "vol_percentile", "realised_vol_annual")


def _short(text: Any) -> str:
    text = str(text or "")
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + " ..."


def portfolio_view(context: DesignContext) -> dict[str, Any]:
    """The portfolio as the prompts show it: strategies with scores, then the top gaps."""
    strategies = []
    for s in context.strategies:
        score = mean_score(s)
        strategies.append({"name": s.get("name"), "category": s.get("category"), "origin": s.get("origin"),
                           "mean_score": None if math.isnan(score) else score,
                           "scores": dict(sorted((s.get("scores") or {}).items()))})
    gaps = [{k: g[k] for k in ("category", "regime", "symbol", "priority", "reason")}
            for g in context.resolved_gaps()[:N_PROMPT_GAPS]]
    return {"strategies": sorted(strategies, key=lambda s: str(s["name"])), "gaps": gaps}


def archived_view(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Recent archive decisions (`ranking_history` rows: run_date, item, reason), newest first."""
    return [{"date": r["run_date"], "strategy": r["item"], "reason": _short(r.get("reason"))}
            for r in list(rows)[:N_ARCHIVED]]


def failed_changes_view(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Recent failures from the knowledge base: rejected candidates (with the checks' reasons)
    and tunes kept out because they did not improve on held-out data."""
    out = []
    for r in rows:
        detail = json.loads(r["detail"]) if isinstance(r.get("detail"), str) else dict(r.get("detail") or {})
        if r["kind"] == "rejected":
            reasons = "; ".join(str(x) for x in detail.get("reasons") or [])
            out.append({"date": r["run_date"], "candidate": r["subject"], "origin": detail.get("origin"),
                        "rejected": _short(reasons)})
        elif r["kind"] == "tuned" and detail.get("result"):
            out.append({"date": r["run_date"], "strategy": r["subject"], "tune": detail["result"],
                        "params_tried": detail.get("params")})
        if len(out) >= N_FAILED:
            break
    return out


def day_briefing(context: DesignContext, *, run: Mapping[str, Any], archived: Sequence[Mapping[str, Any]] = (),
                 failures: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The briefing of `context.run_date` (see the module docstring)."""
    top, bottom = performers(list(context.strategies))
    regimes = {sym: {k: r.get(k) for k in REGIME_KEYS if k in r} for sym, r in sorted(context.regimes.items())}
    return {
        "run": dict(run),
        "portfolio": portfolio_view(context),
        "regimes": regimes,
        "top_performers": top,
        "bottom_performers": bottom,
        "archived": archived_view(archived),
        "failed_changes": failed_changes_view(failures),
        "categories": list(context.categories),
    }
