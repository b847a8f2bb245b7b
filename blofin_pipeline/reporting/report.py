"""The daily report: one JSON-able dict built from the data database (written by `writer`).

:func:`build_report` gathers the day (the specification's ``reporter.py``): activity
(designed, tuned, rejected, archived), top performers (strategies, models, ensembles),
trends against previous run dates, portfolio health (coverage by category and symbol,
concentration, drawdowns, flags), data quality (candle gaps), the step log and LLM usage,
with a ``data_notice`` that says plainly when the data is synthetic.

Definitions used below:
- a strategy's day figures are means over the symbols it was scored on (``score``,
  ``sharpe``, ``deflated_sharpe``, ``total_return``), except ``max_drawdown``, the worst
  symbol's; its best symbol is the one with the highest score;
- "kept" strategies are those the day's ranking kept; when the day has no ranking yet,
  those whose registry status is ``active``;
- concentration (`health`): category shares among the kept strategies, their
  Herfindahl-Hirschman index (sum of squared shares, 1 = a single category) and its
  effective number 1/HHI.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from blofin_pipeline.market.window import DataLabel
from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.ranking.ranker import strategy_item
from blofin_pipeline.reporting.forward import report_sections
from blofin_pipeline.reporting.health import portfolio_health
from blofin_pipeline.store import to_json, utc_now
from blofin_pipeline.store.candles import candle_coverage, gaps_found_on
from blofin_pipeline.store.knowledge import knowledge_on
from blofin_pipeline.store.rankings import decision_counts, decisions_on
from blofin_pipeline.store.registry import category_status_counts, registered_on
from blofin_pipeline.store.results import (
    ensemble_results_on,
    model_results_on,
    score_trend,
    strategy_results_on,
)
from blofin_pipeline.store.runs import step_rows_on
from blofin_pipeline.store.usage import attempts_on, usage_by_step_model

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)

TREND_DATES = 14             # run dates shown in the trends
TOP_PERFORMERS = 10          # strategies listed as top performers
EQUITY_CURVES = 5            # top strategies whose equity curve is charted
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: this report was computed on the generated sample market, not on BloFin "
    "exchange candles. Its figures test the pipeline; they say nothing about real markets."
)


# -- building --------------------------------------------------------------------------
def build_report(store: Store, run_date: str, *, synthetic: bool, config_dict: Mapping[str, Any],
                 data_sources: Sequence[str] = ()) -> dict[str, Any]:
    """The day's report as a JSON-able dict (NaN written as None). ``data_sources`` are the
    scoring window's candles' own sources (`market.window.window_label`)."""
    results = strategy_results_on(store, run_date)
    decisions = decisions_on(store, run_date)
    strategies = _strategy_rows(results, [d for d in decisions if d["item_type"] == "strategy"])
    kept = [s for s in strategies if s["kept"]]
    models = model_results_on(store, run_date)
    ensembles = ensemble_results_on(store, run_date)
    for rows, key in ((models, "model_name"), (ensembles, "ensemble_name")):
        _attach_ranks(rows, key, [d for d in decisions if d["item_type"] == ("model" if key == "model_name" else "ensemble")])
    if ensembles:
        for e in ensembles:
            e["members"] = loads_or(e.get("members"), default=[])

    activity = _activity(store, run_date, decisions)
    trends = _trends(store, run_date, [s["item"] for s in strategies[:EQUITY_CURVES]])
    health = portfolio_health(category_status_counts(store), strategies, kept)
    data_quality = _data_quality(store, run_date)
    steps = _steps(store, run_date)
    llm = llm_usage(store, run_date)
    summary = _summary(strategies, kept, health, activity, data_quality, steps, llm,
                       n_models=len(models), n_ensembles=len(ensembles))
    summary["text"] = summary_text(run_date, synthetic, summary)
    report = {
        "run_date": run_date,
        "generated_at": utc_now(),
        "synthetic": bool(synthetic),
        "data_sources": list(data_sources),
        "data_notice": SYNTHETIC_NOTICE if synthetic else f"Market data: {DataLabel(tuple(data_sources)).description}.",
        "config": dict(config_dict),
        "summary": summary,
        "leaderboard": [_public_strategy(s) for s in strategies],
        "top_performers": {
            "strategies": [_public_strategy(s) for s in strategies[:TOP_PERFORMERS]],
            "models": [m for m in models if m["status"] == "active"][:TOP_PERFORMERS],
            "ensembles": [e for e in ensembles if e["status"] == "active"][:TOP_PERFORMERS],
        },
        "models": models,
        "ensembles": ensembles,
        "equity_curves": _equity_curves(results, strategies[:EQUITY_CURVES]),
        "trends": trends,
        "portfolio_health": health,
        "activity": activity,
        "data_quality": data_quality,
        "steps": steps,
        "llm_usage": llm,
        "ai_review": None,
        **report_sections(store, run_date),
    }
    summary["flags"] += report["forward"]["flags"]
    return json.loads(to_json(report))


def _summary(strategies: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]], health: Mapping[str, Any],
             activity: Mapping[str, Any], data_quality: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
             llm: Mapping[str, Any], *, n_models: int, n_ensembles: int) -> dict[str, Any]:
    """The day in figures, with every flag raised (health, failed steps, candle gaps)."""
    flags = list(health["flags"])
    failed = [s["step"] for s in steps if s["status"] == "failed"]
    if failed:
        flags.append(f"failed steps: {', '.join(failed)}")
    stopped = [s["step"] for s in steps if s["status"] == "stopped"]
    if stopped:
        flags.append(f"stopped before their work (LLM budget): {', '.join(stopped)}")
    if data_quality["n_gaps"]:
        flags.append(f"{data_quality['n_gaps']} candle gap(s) found ({data_quality['missing_bars']} missing bars)")
    best = strategies[0] if strategies else None
    return {
        "strategies_scored": len(strategies),
        "strategies_ranked": sum(1 for s in strategies if s["decision"] is not None),
        "strategies_kept": len(kept),
        "strategies_archived": sum(1 for s in strategies if s["decision"] == "archived"),
        "best_strategy": best["item"] if best else None,
        "best_score": best["score"] if best else None,
        "mean_score": mean_of_finite(s["score"] for s in strategies),
        "significant": health["significant"],
        "designed": activity["designed"]["count"],
        "tuned": activity["tuned"]["count"],
        "rejected": activity["rejected"]["count"],
        "models": n_models,
        "ensembles": n_ensembles,
        "failed_steps": failed,
        "llm_usd": llm["usd"],
        "flags": flags,
    }


def loads_or(text: Any, default: Any) -> Any:
    """JSON text decoded, or ``default`` when None or not JSON (a value already decoded passes)."""
    if text is None or not isinstance(text, str):
        return text if text is not None else default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _strategy_rows(results: Sequence[Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]]) -> list[dict]:
    """One row per strategy version scored on the day, in ranking order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        grouped.setdefault(strategy_item(r["strategy"], r["version"]), []).append(r)
    ranked = {d["item"]: d for d in decisions}
    rows = []
    for item, rs in grouped.items():
        by_score = sorted(rs, key=lambda r: (finite_or_none(r["score"]) is None, -(finite_or_none(r["score"]) or 0.0)))
        drawdowns = [(finite_or_none(r["max_drawdown"]), r["symbol"]) for r in rs]
        drawdowns = [d for d in drawdowns if d[0] is not None]
        worst = min(drawdowns) if drawdowns else (None, None)
        decision = ranked.get(item)
        status = rs[0].get("status")
        rows.append({
            "item": item, "name": rs[0]["strategy"], "version": int(rs[0]["version"]),
            "category": rs[0].get("category") or "unknown", "origin": rs[0].get("origin"), "status": status,
            "phase": rs[0]["phase"], "symbols": [r["symbol"] for r in rs], "best_symbol": by_score[0]["symbol"],
            "score": mean_of_finite(r["score"] for r in rs),
            "sharpe": mean_of_finite(r["sharpe"] for r in rs),
            "deflated_sharpe": mean_of_finite(r["deflated_sharpe"] for r in rs),
            "max_deflated_sharpe": max((v for v in (finite_or_none(r["deflated_sharpe"]) for r in rs) if v is not None),
                                       default=None),
            "total_return": mean_of_finite(r["total_return"] for r in rs),
            "max_drawdown": worst[0], "worst_drawdown_symbol": worst[1],
            "n_trades": sum(int(r["n_trades"]) for r in rs if r["n_trades"] is not None),
            "per_symbol": {r["symbol"]: {"score": finite_or_none(r["score"]), "sharpe": finite_or_none(r["sharpe"]),
                                         "deflated_sharpe": finite_or_none(r["deflated_sharpe"]),
                                         "max_drawdown": finite_or_none(r["max_drawdown"])} for r in rs},
            "rank": int(decision["rank"]) if decision else None,
            "decision": decision["decision"] if decision else None,
            "reason": decision["reason"] if decision else None,
            # with a ranking that day, kept means kept by it; before any ranking, active
            "kept": (decision["decision"] == "kept") if decision else (not ranked and status == "active"),
        })
    if decisions:
        rows.sort(key=lambda s: (s["rank"] is None, s["rank"] or 0, s["item"]))
    else:  # no ranking yet: the order the ranker would use by default
        rows.sort(key=lambda s: (s["score"] is None, -(s["score"] or 0.0), s["item"]))
        for position, s in enumerate(rows, start=1):
            s["rank"] = position
    return rows


def _public_strategy(s: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("rank", "item", "name", "version", "category", "origin", "status", "decision", "reason", "score", "sharpe",
            "deflated_sharpe", "max_deflated_sharpe", "total_return", "max_drawdown", "worst_drawdown_symbol",
            "n_trades", "best_symbol", "symbols", "per_symbol")
    out = {k: s[k] for k in keys}
    out["strategy"] = out.pop("item")
    return out


def _attach_ranks(rows: list[dict[str, Any]], name_key: str, decisions: Sequence[Mapping[str, Any]]) -> None:
    by_item = {d["item"]: d for d in decisions}
    for r in rows:
        d = by_item.get(r[name_key])
        r["rank"] = int(d["rank"]) if d else None
        r["decision"] = d["decision"] if d else None
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r[name_key]))


def _equity_curves(results: Sequence[Mapping[str, Any]], top: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each top strategy's equity curve on its best symbol, as stored ([[iso, equity], ...])."""
    by_key = {(strategy_item(r["strategy"], r["version"]), r["symbol"]): r for r in results}
    curves = []
    for s in top:
        row = by_key.get((s["item"], s["best_symbol"]))
        points = loads_or(row.get("equity_curve") if row else None, default=None)
        if not isinstance(points, list):
            continue
        clean = [[str(p[0]), finite_or_none(p[1])] for p in points
                 if isinstance(p, (list, tuple)) and len(p) == 2]
        if clean:
            curves.append({"strategy": s["item"], "symbol": s["best_symbol"], "points": clean})
    return curves


def _names(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    names = sorted(dict.fromkeys(rows))
    return {"count": len(names), "names": names}


def _activity(store: Store, run_date: str, decisions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    new = registered_on(store, run_date)
    knowledge = knowledge_on(store, run_date)
    kb = {kind: [k["subject"] for k in knowledge if k["kind"] == kind] for kind in ("designed", "tuned", "rejected", "archived")}
    designed = [strategy_item(s["name"], s["version"]) for s in new if s["origin"] == "designer"] + kb["designed"]
    tuned = [strategy_item(s["name"], s["version"]) for s in new if s["origin"] == "tuner"] + kb["tuned"]
    rejected = []
    for k in knowledge:
        if k["kind"] == "rejected":
            detail = loads_or(k["detail"], default={})
            reasons = detail.get("reasons") if isinstance(detail, dict) else None
            rejected.append({"name": k["subject"], "reasons": reasons if isinstance(reasons, list) else []})
    archived = {
        "strategies": sorted({d["item"] for d in decisions if d["item_type"] == "strategy" and d["decision"] == "archived"}
                             | set(kb["archived"])),
        "models": sorted(d["item"] for d in decisions if d["item_type"] == "model" and d["decision"] == "archived"),
        "ensembles": sorted(d["item"] for d in decisions if d["item_type"] == "ensemble" and d["decision"] == "archived"),
    }
    return {
        "designed": _names(designed),
        "tuned": _names(tuned),
        "rejected": {"count": len(rejected), "items": rejected},
        "archived": {"count": sum(len(v) for v in archived.values()), **archived},
        "new_by_origin": dict(Counter(s["origin"] for s in new)),
        "new_strategies": [{"strategy": strategy_item(s["name"], s["version"]), "category": s["category"],
                            "origin": s["origin"], "status": s["status"], "parent": s["parent"]} for s in new],
    }


def _trends(store: Store, run_date: str, top_items: Sequence[str]) -> dict[str, Any]:
    rows = score_trend(store, run_date, TREND_DATES)
    dates = sorted({r["run_date"] for r in rows})
    by_date: dict[str, list[float | None]] = {d: [] for d in dates}
    per_item: dict[str, dict[str, float | None]] = {}
    for r in rows:
        score = finite_or_none(r["score"])
        by_date[r["run_date"]].append(score)
        per_item.setdefault(strategy_item(r["strategy"], r["version"]), {})[r["run_date"]] = score
    counts: dict[str, Counter] = {}
    for r in decision_counts(store, run_date):
        counts.setdefault(r["run_date"], Counter())[r["decision"]] += int(r["n"])
    top_score = [max((v for v in by_date[d] if v is not None), default=None) for d in dates]
    mean_score = [mean_of_finite(by_date[d]) for d in dates]
    n_kept = [counts[d]["kept"] if d in counts else None for d in dates]
    trends = {
        "dates": dates,
        "top_score": top_score,
        "mean_score": mean_score,
        "n_scored": [len(by_date[d]) for d in dates],
        "n_kept": n_kept,
        "top_strategies": {item: [per_item.get(item, {}).get(d) for d in dates] for item in top_items},
        "vs_previous": None,
    }
    if len(dates) >= 2 and dates[-1] == run_date:
        def change(series: list) -> float | None:
            a, b = series[-2], series[-1]
            return None if a is None or b is None else b - a
        trends["vs_previous"] = {"previous_date": dates[-2], "top_score": change(top_score),
                                 "mean_score": change(mean_score), "n_kept": change(n_kept),
                                 "n_scored": change(trends["n_scored"])}
    return trends


def _ms_to_iso(ms: Any) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat(timespec="minutes")


def _data_quality(store: Store, run_date: str) -> dict[str, Any]:
    gaps = [{"symbol": g["symbol"], "timeframe": g["timeframe"], "gap_start": _ms_to_iso(g["gap_start"]),
             "gap_end": _ms_to_iso(g["gap_end"]), "missing_bars": int(g["missing_bars"])}
            for g in gaps_found_on(store, run_date)]
    candles = [{"symbol": c["symbol"], "timeframe": c["timeframe"], "source": c["source"], "n_bars": int(c["n_bars"]),
                "first": _ms_to_iso(c["first_ts"]), "last": _ms_to_iso(c["last_ts"])}
               for c in candle_coverage(store)]
    return {"n_gaps": len(gaps), "missing_bars": sum(g["missing_bars"] for g in gaps), "gaps": gaps, "candles": candles}


def _steps(store: Store, run_date: str) -> list[dict[str, Any]]:
    return [{"step": s["step"], "status": s["status"], "started_at": s["started_at"], "ended_at": s["ended_at"],
             "duration_s": finite_or_none(s["duration_s"]), "error": s["error"]}
            for s in step_rows_on(store, run_date)]


USAGE_COUNTS = ("calls", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
                "http_retries")


def llm_usage(store: Store, run_date: str) -> dict[str, Any]:
    """The day's LLM usage: totals, by step/model/mode/status, and every attempt (cache tokens too)."""
    rows = [{k: (float(v) if k in ("usd", "mean_latency_ms") and v is not None else
                 int(v) if k in USAGE_COUNTS and v is not None else v)
             for k, v in r.items()} for r in usage_by_step_model(store, run_date)]
    total = {k: sum(r.get(k) or 0 for r in rows) for k in USAGE_COUNTS}
    calls = [{k: r[k] for k in ("step", "attempt", "model", "mode", "status", "input_tokens", "output_tokens",
                                "cache_creation_tokens", "cache_read_tokens", "http_retries", "usd", "latency_ms",
                                "request_id", "error")}
             for r in attempts_on(store, run_date)]
    return {**total, "usd": sum(r["usd"] or 0.0 for r in rows), "by_step_model": rows, "attempts": calls}


def summary_text(run_date: str, synthetic: bool, s: Mapping[str, Any]) -> str:
    parts = [f"{run_date}{' (SYNTHETIC data)' if synthetic else ''}:"]
    parts.append(f"{s['strategies_scored']} strategies scored, {s['strategies_kept']} kept, "
                 f"{s['strategies_archived']} archived.")
    if s["best_strategy"]:
        score = s["best_score"]
        parts.append(f"Best {s['best_strategy']} (score {score:.3f})." if score is not None
                     else f"Best {s['best_strategy']}.")
    parts.append(f"{len(s['significant'])} significant by deflated Sharpe.")
    parts.append(f"{s['designed']} designed, {s['tuned']} tuned, {s['rejected']} rejected; "
                 f"{s['models']} models, {s['ensembles']} ensembles; LLM ${s['llm_usd']:.2f}.")
    if s["failed_steps"]:
        parts.append(f"Failed steps: {', '.join(s['failed_steps'])}.")
    return " ".join(parts)
