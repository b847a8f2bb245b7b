"""The report's day around the strategies: research activity, trends over run dates, data
quality, the run's own step log and its LLM usage."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.ranking.ranker import strategy_item
from blofin_pipeline.reporting.strategies import loads_or
from blofin_pipeline.store.candles import candle_coverage, gaps_found_on
from blofin_pipeline.store.knowledge import knowledge_on
from blofin_pipeline.store.rankings import decision_counts
from blofin_pipeline.store.registry import registered_on
from blofin_pipeline.store.results import score_trend
from blofin_pipeline.store.runs import step_rows_on
from blofin_pipeline.store.usage import attempts_on, usage_by_step_model

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

TREND_DATES = 14             # run dates shown in the trends
REPORTING_STEPS = ("generate_report", "ai_review")  # the steps that write the page: not in its step table
USAGE_COUNTS = ("calls", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
                "http_retries")
ATTEMPT_KEYS = ("step", "attempt", "model", "mode", "status", "input_tokens", "output_tokens", "cache_creation_tokens",
                "cache_read_tokens", "http_retries", "usd", "latency_ms", "request_id", "error")


def _names(rows: Sequence[str]) -> dict[str, Any]:
    names = sorted(dict.fromkeys(rows))
    return {"count": len(names), "names": names}


def activity(store: Store, run_date: str, decisions: Sequence[Mapping[str, Any]],
             statuses: Mapping[str, Any]) -> dict[str, Any]:
    """What the date's research did: designed, tuned, rejected, archived (by the ranking,
    or for a failed scoring), and the versions it registered with their status at the end
    of the date (``statuses``: `strategies.status.statuses_on`, not the latest status, which
    a later date may have changed)."""
    new = registered_on(store, run_date)
    knowledge = knowledge_on(store, run_date)
    notes = {kind: [(k["subject"], loads_or(k["detail"], default={})) for k in knowledge if k["kind"] == kind]
             for kind in ("designed", "tuned", "rejected", "archived")}
    rejected = [{"name": name, "reasons": d.get("reasons") if isinstance(d.get("reasons"), list) else []}
                for name, d in notes["rejected"]]
    by_type = {t: sorted(d["item"] for d in decisions if d["item_type"] == t and d["decision"] == "archived")
               for t in ("strategy", "model", "ensemble")}
    failed = sorted(name for name, d in notes["archived"] if d.get("step") == "score_strategies")
    return {
        "designed": _names([name for name, _ in notes["designed"]]),
        # a tune that kept the parameters or did not improve registers nothing: not "tuned"
        "tuned": _names([name for name, d in notes["tuned"] if "result" not in d]),
        "rejected": {"count": len(rejected), "items": rejected},
        "archived": {"count": sum(len(v) for v in by_type.values()), "strategies": by_type["strategy"],
                     "models": by_type["model"], "ensembles": by_type["ensemble"]},
        "failed_scoring": failed,
        "new_by_origin": dict(Counter(s["origin"] for s in new)),
        "new_strategies": [{"strategy": strategy_item(s["name"], s["version"]), "category": s["category"],
                            "origin": s["origin"], "status": statuses[strategy_item(s["name"], s["version"])].status,
                            "parent": s["parent"]} for s in new],
    }


def trends(store: Store, run_date: str, top_items: Sequence[str]) -> dict[str, Any]:
    """Top and mean score, versions scored and kept per run date (the last TREND_DATES up to
    the date), the day's leaders over them, and the change against the previous date."""
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
    out = {
        "dates": dates,
        "top_score": [max((v for v in by_date[d] if v is not None), default=None) for d in dates],
        "mean_score": [mean_of_finite(by_date[d]) for d in dates],
        "n_scored": [len(by_date[d]) for d in dates],
        "n_kept": [counts[d]["kept"] if d in counts else None for d in dates],
        "top_strategies": {item: [per_item.get(item, {}).get(d) for d in dates] for item in top_items},
        "vs_previous": None,
    }
    if len(dates) >= 2 and dates[-1] == run_date:
        def change(series: list) -> float | None:
            a, b = series[-2], series[-1]
            return None if a is None or b is None else b - a
        out["vs_previous"] = {"previous_date": dates[-2], **{k: change(out[k]) for k in
                                                             ("top_score", "mean_score", "n_kept", "n_scored")}}
    return out


def _ms_to_iso(ms: Any) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat(timespec="minutes")


def data_quality(store: Store, run_date: str, window_ms: tuple[int, int], symbols: Sequence[str], timeframe: str
                 ) -> dict[str, Any]:
    """The gaps the date's ingest found, and the candles of the run's symbols and bar size
    in its scoring window (``window_ms``: start and end, epoch ms)."""
    gaps = [{"symbol": g["symbol"], "timeframe": g["timeframe"], "gap_start": _ms_to_iso(g["gap_start"]),
             "gap_end": _ms_to_iso(g["gap_end"]), "missing_bars": int(g["missing_bars"])}
            for g in gaps_found_on(store, run_date)]
    candles = [{"symbol": c["symbol"], "timeframe": c["timeframe"], "source": c["source"], "n_bars": int(c["n_bars"]),
                "first": _ms_to_iso(c["first_ts"]), "last": _ms_to_iso(c["last_ts"])}
               for c in candle_coverage(store, *window_ms) if c["symbol"] in symbols and c["timeframe"] == timeframe]
    return {"n_gaps": len(gaps), "missing_bars": sum(g["missing_bars"] for g in gaps), "gaps": gaps, "candles": candles}


def run_steps(store: Store, run_date: str, run_id: str | None) -> list[dict[str, Any]]:
    """The step log of the run that made the report (all runs of the date when it is not
    known), without the reporting steps themselves: they are writing this page."""
    return [{"step": s["step"], "status": s["status"], "started_at": s["started_at"], "ended_at": s["ended_at"],
             "duration_s": finite_or_none(s["duration_s"]), "error": s["error"]}
            for s in step_rows_on(store, run_date)
            if s["step"] not in REPORTING_STEPS and (run_id is None or s.get("run_id") == run_id)]


def llm_usage(store: Store, run_date: str) -> dict[str, Any]:
    """The date's LLM usage: totals (USD included), by step/model/mode/status, and every
    attempt with its cache figures."""
    rows = [{k: (float(v) if k in ("usd", "mean_latency_ms") and v is not None else
                 int(v) if k in USAGE_COUNTS and v is not None else v)
             for k, v in r.items()} for r in usage_by_step_model(store, run_date)]
    total = {k: sum(r.get(k) or 0 for r in rows) for k in USAGE_COUNTS}
    calls = [{k: r[k] for k in ATTEMPT_KEYS} for r in attempts_on(store, run_date)]
    return {**total, "usd": sum(r["usd"] or 0.0 for r in rows), "by_step_model": rows, "attempts": calls}
