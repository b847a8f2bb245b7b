"""The daily report: one JSON-able dict built from the data database, written three ways.

:func:`build_report` gathers the day (the specification's ``reporter.py``): activity
(designed, tuned, rejected, archived), top performers (strategies, models, ensembles),
trends against previous run dates, portfolio health (coverage by category and symbol,
concentration, drawdowns, flags), data quality (candle gaps), the step log and LLM usage,
with a ``data_notice`` that says plainly when the data is synthetic.

:func:`write_report` writes ``<reports_dir>/YYYY-MM-DD.json`` and ``.html`` and upserts
``daily_reports`` (keyed by run date, so a retry rewrites the same row and never touches
an AI review already merged). :func:`merge_ai_review` adds the ``ai_review`` step's result
to the stored report and rewrites both files.

Definitions used below:
- a strategy's day figures are means over the symbols it was scored on (``score``,
  ``sharpe``, ``deflated_sharpe``, ``total_return``), except ``max_drawdown``, the worst
  symbol's; its best symbol is the one with the highest score;
- "kept" strategies are those the day's ranking kept; when the day has no ranking yet,
  those whose registry status is ``active``;
- concentration: category shares among the kept strategies, their Herfindahl-Hirschman
  index (sum of squared shares, 1 = a single category) and its effective number 1/HHI.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blofin_pipeline.backtest.stats import SIGNIFICANT_DSR
from blofin_pipeline.exceptions import PipelineError, StoreError
from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.ranking.ranker import strategy_item
from blofin_pipeline.store import to_json, utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)

TREND_DATES = 14             # run dates shown in the trends
TOP_PERFORMERS = 10          # strategies listed as top performers
EQUITY_CURVES = 5            # top strategies whose equity curve is charted
DEEP_DRAWDOWN = -0.25        # a kept strategy's worst drawdown at or below this is flagged
CONCENTRATION_SHARE = 0.5    # one category holding more than this share of the kept is flagged
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: this report was computed on the generated sample market, not on BloFin "
    "exchange candles. Its figures test the pipeline; they say nothing about real markets."
)
REAL_NOTICE = "Market data: BloFin exchange candles."


# -- building --------------------------------------------------------------------------
def build_report(store: Store, run_date: str, *, synthetic: bool, config_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The day's report as a JSON-able dict (NaN written as None)."""
    results = store.query_named("report_strategy_results", {"run_date": run_date})
    decisions = store.query_named("report_ranking_for_date", {"run_date": run_date})
    strategies = _strategy_rows(results, [d for d in decisions if d["item_type"] == "strategy"])
    kept = [s for s in strategies if s["kept"]]
    models = store.query_named("report_models", {"run_date": run_date})
    ensembles = store.query_named("report_ensembles", {"run_date": run_date})
    for rows, key in ((models, "model_name"), (ensembles, "ensemble_name")):
        _attach_ranks(rows, key, [d for d in decisions if d["item_type"] == ("model" if key == "model_name" else "ensemble")])
    if ensembles:
        for e in ensembles:
            e["members"] = _loads(e.get("members"), default=[])

    activity = _activity(store, run_date, decisions)
    trends = _trends(store, run_date, [s["item"] for s in strategies[:EQUITY_CURVES]])
    health = _portfolio_health(store, strategies, kept)
    data_quality = _data_quality(store, run_date)
    steps = _steps(store, run_date)
    llm = _llm_usage(store, run_date)
    flags = list(health["flags"])
    failed = [s["step"] for s in steps if s["status"] == "failed"]
    if failed:
        flags.append(f"failed steps: {', '.join(failed)}")
    if data_quality["n_gaps"]:
        flags.append(f"{data_quality['n_gaps']} candle gap(s) found ({data_quality['missing_bars']} missing bars)")

    best = strategies[0] if strategies else None
    summary = {
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
        "models": len(models),
        "ensembles": len(ensembles),
        "failed_steps": failed,
        "llm_usd": llm["usd"],
        "flags": flags,
    }
    summary["text"] = _summary_text(run_date, synthetic, summary)
    report = {
        "run_date": run_date,
        "generated_at": utc_now(),
        "synthetic": bool(synthetic),
        "data_notice": SYNTHETIC_NOTICE if synthetic else REAL_NOTICE,
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
    }
    return json.loads(to_json(report))


def _loads(text: Any, default: Any) -> Any:
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
        points = _loads(row.get("equity_curve") if row else None, default=None)
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
    new = store.query_named("report_new_strategies", {"run_date": run_date})
    knowledge = store.query_named("report_knowledge", {"run_date": run_date})
    kb = {kind: [k["subject"] for k in knowledge if k["kind"] == kind] for kind in ("designed", "tuned", "rejected", "archived")}
    designed = [strategy_item(s["name"], s["version"]) for s in new if s["origin"] == "designer"] + kb["designed"]
    tuned = [strategy_item(s["name"], s["version"]) for s in new if s["origin"] == "tuner"] + kb["tuned"]
    rejected = []
    for k in knowledge:
        if k["kind"] == "rejected":
            detail = _loads(k["detail"], default={})
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
    rows = store.query_named("report_score_trend", {"run_date": run_date, "n_dates": TREND_DATES})
    dates = sorted({r["run_date"] for r in rows})
    by_date: dict[str, list[float | None]] = {d: [] for d in dates}
    per_item: dict[str, dict[str, float | None]] = {}
    for r in rows:
        score = finite_or_none(r["score"])
        by_date[r["run_date"]].append(score)
        per_item.setdefault(strategy_item(r["strategy"], r["version"]), {})[r["run_date"]] = score
    counts: dict[str, Counter] = {}
    for r in store.query_named("report_ranking_counts", {"run_date": run_date}):
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


def _portfolio_health(store: Store, strategies: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> dict:
    registry = store.query_named("report_registry")
    categories = sorted({r["category"] for r in registry} | {s["category"] for s in strategies})
    by_category = {}
    for cat in categories:
        mine = [s for s in kept if s["category"] == cat]
        best = max(mine, key=lambda s: s["score"] if s["score"] is not None else -math.inf, default=None)
        by_category[cat] = {
            "kept": len(mine),
            "registered": sum(int(r["n"]) for r in registry if r["category"] == cat),
            "active_in_registry": sum(int(r["n"]) for r in registry if r["category"] == cat and r["status"] == "active"),
            "best": best["item"] if best else None,
            "best_score": best["score"] if best else None,
        }
    symbols = sorted({sym for s in strategies for sym in s["symbols"]})
    by_symbol = {}
    for sym in symbols:
        scores = [(s["per_symbol"][sym]["score"], s["item"]) for s in kept if sym in s["per_symbol"]]
        finite = [(v, item) for v, item in scores if v is not None]
        best = max(finite, default=(None, None))
        by_symbol[sym] = {"kept_scored": len(scores), "positive": sum(1 for v, _ in finite if v > 0),
                          "mean_score": mean_of_finite(v for v, _ in finite), "best": best[1], "best_score": best[0]}
    shares = {cat: v["kept"] / len(kept) for cat, v in by_category.items() if kept and v["kept"]}
    hhi = sum(x * x for x in shares.values()) if shares else None
    top_category = max(shares, key=lambda c: (shares[c], c)) if shares else None
    drawdowns = sorted(({"strategy": s["item"], "max_drawdown": s["max_drawdown"], "symbol": s["worst_drawdown_symbol"]}
                        for s in kept if s["max_drawdown"] is not None), key=lambda d: d["max_drawdown"])
    deep = [d for d in drawdowns if d["max_drawdown"] <= DEEP_DRAWDOWN]
    significant = sorted(s["item"] for s in strategies
                         if s["max_deflated_sharpe"] is not None and s["max_deflated_sharpe"] >= SIGNIFICANT_DSR)

    flags = []
    if not strategies:
        flags.append("no strategy was scored on this date")
    if top_category and shares[top_category] > CONCENTRATION_SHARE and len(kept) > 1:
        flags.append(f"concentration: {shares[top_category]:.0%} of the kept strategies are {top_category}")
    empty = [c for c, v in by_category.items() if v["kept"] == 0]
    if kept and empty:
        flags.append(f"no kept strategy in categories: {', '.join(empty)}")
    for sym, v in by_symbol.items():
        if v["kept_scored"] and v["positive"] == 0:
            flags.append(f"no kept strategy has a positive score on {sym}")
    if deep:
        flags.append(f"{len(deep)} kept strateg{'y' if len(deep) == 1 else 'ies'} with max drawdown at or below "
                     f"{DEEP_DRAWDOWN:.0%} (worst {deep[0]['strategy']} {deep[0]['max_drawdown']:.1%})")
    if strategies and not significant:
        flags.append(f"no strategy is significant by the deflated Sharpe ratio (>= {SIGNIFICANT_DSR}): "
                     "the best scores may be luck among many trials")
    return {
        "kept": len(kept),
        "by_category": by_category,
        "by_symbol": by_symbol,
        "concentration": {"category_shares": shares, "top_category": top_category,
                          "top_category_share": shares.get(top_category) if top_category else None,
                          "hhi": hhi, "effective_categories": (1.0 / hhi) if hhi else None},
        "drawdowns": drawdowns,
        "mean_max_drawdown": mean_of_finite(d["max_drawdown"] for d in drawdowns),
        "worst_max_drawdown": drawdowns[0]["max_drawdown"] if drawdowns else None,
        "significant": significant,
        "thresholds": {"significant_dsr": SIGNIFICANT_DSR, "deep_drawdown": DEEP_DRAWDOWN,
                       "concentration_share": CONCENTRATION_SHARE},
        "flags": flags,
    }


def _ms_to_iso(ms: Any) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat(timespec="minutes")


def _data_quality(store: Store, run_date: str) -> dict[str, Any]:
    gaps = [{"symbol": g["symbol"], "timeframe": g["timeframe"], "gap_start": _ms_to_iso(g["gap_start"]),
             "gap_end": _ms_to_iso(g["gap_end"]), "missing_bars": int(g["missing_bars"])}
            for g in store.query_named("report_gaps", {"run_date": run_date})]
    candles = [{"symbol": c["symbol"], "timeframe": c["timeframe"], "source": c["source"], "n_bars": int(c["n_bars"]),
                "first": _ms_to_iso(c["first_ts"]), "last": _ms_to_iso(c["last_ts"])}
               for c in store.query_named("report_candles")]
    return {"n_gaps": len(gaps), "missing_bars": sum(g["missing_bars"] for g in gaps), "gaps": gaps, "candles": candles}


def _steps(store: Store, run_date: str) -> list[dict[str, Any]]:
    return [{"step": s["step"], "status": s["status"], "started_at": s["started_at"], "ended_at": s["ended_at"],
             "duration_s": finite_or_none(s["duration_s"]), "error": s["error"]}
            for s in store.query_named("report_steps", {"run_date": run_date})]


def _llm_usage(store: Store, run_date: str) -> dict[str, Any]:
    rows = [{k: (float(v) if k in ("usd", "mean_latency_ms") and v is not None else
                 int(v) if k in ("calls", "input_tokens", "output_tokens", "cache_creation_tokens",
                                 "cache_read_tokens") and v is not None else v)
             for k, v in r.items()} for r in store.query_named("report_llm_usage", {"run_date": run_date})]
    total = {k: sum(r[k] or 0 for r in rows) for k in ("calls", "input_tokens", "output_tokens",
                                                       "cache_creation_tokens", "cache_read_tokens")}
    return {**total, "usd": sum(r["usd"] or 0.0 for r in rows), "by_step_model": rows}


def _summary_text(run_date: str, synthetic: bool, s: Mapping[str, Any]) -> str:
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


# -- writing ---------------------------------------------------------------------------
def report_paths(run_date: str, reports_dir: Path | str) -> tuple[Path, Path]:
    base = Path(reports_dir)
    return base / f"{run_date}.json", base / f"{run_date}.html"


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_files(run_date: str, report: Mapping[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    from blofin_pipeline.reporting.html import render_report

    json_path, html_path = report_paths(run_date, reports_dir)
    _write_text(json_path, json.dumps(json.loads(to_json(report)), indent=2, sort_keys=False) + "\n")
    _write_text(html_path, render_report(report))
    return json_path, html_path


def write_report(store: Store, run_date: str, report: dict[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    """Write the JSON and HTML files and upsert ``daily_reports``; returns (json_path, html_path).

    An AI review already merged for the date stays in the row and is carried into the new
    files, so re-running generate_report after ai_review loses nothing.
    """
    existing = store.query("SELECT ai_review, ai_review_mode FROM daily_reports WHERE run_date = :d", {"d": run_date})
    if existing and existing[0]["ai_review"] and not report.get("ai_review"):
        report = {**report, "ai_review": _loads(existing[0]["ai_review"], default=None)}
    json_path, html_path = _write_files(run_date, report, reports_dir)
    now = utc_now()
    store.upsert("daily_reports", [{
        "run_date": run_date, "report": to_json(report), "summary": report.get("summary", {}).get("text"),
        "json_path": str(json_path), "html_path": str(html_path), "synthetic_data": int(bool(report.get("synthetic"))),
        "created_at": now, "updated_at": now,
    }], key=("run_date",), update=("report", "summary", "json_path", "html_path", "synthetic_data", "updated_at"))
    logger.info("report for %s written to %s and %s", run_date, json_path, html_path)
    return json_path, html_path


def merge_ai_review(store: Store, run_date: str, review: Mapping[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    """Store the day's AI review in ``daily_reports`` and rewrite the JSON and HTML with it."""
    rows = store.query("SELECT report FROM daily_reports WHERE run_date = :d", {"d": run_date})
    if not rows:
        raise PipelineError(f"no daily report for {run_date} to merge the AI review into: run generate_report first")
    try:
        report = json.loads(rows[0]["report"])
    except ValueError as err:
        raise StoreError(f"daily_reports row for {run_date} holds invalid JSON") from err
    review = json.loads(to_json(dict(review)))
    report["ai_review"] = review
    json_path, html_path = _write_files(run_date, report, reports_dir)
    store.execute(
        "UPDATE daily_reports SET report = :report, ai_review = :review, ai_review_mode = :mode, "
        "json_path = :json_path, html_path = :html_path, updated_at = :now WHERE run_date = :d",
        {"report": to_json(report), "review": to_json(review), "mode": review.get("mode"),
         "json_path": str(json_path), "html_path": str(html_path), "now": utc_now(), "d": run_date},
    )
    logger.info("AI review (%s) merged into the report for %s", review.get("mode"), run_date)
    return json_path, html_path
