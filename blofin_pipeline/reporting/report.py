"""The daily report: one JSON-able dict built from the data database (written by `writer`).

:func:`build_report` gathers the day (the specification's ``reporter.py``): the run that
made it and its parameters, activity (designed, tuned, rejected, archived), the
leaderboard, the leaders' equity on every symbol beside buy and hold, what changed since
the previous ranking, trends, portfolio health, ML models beside their no-skill baselines,
data quality, the run's steps and LLM usage, the metric definitions, with a
``data_notice`` that says plainly when the data is synthetic.

One source for every figure: the summary, the review (`steps.reporting.review_facts`)
and the HTML read the leaderboard, activity, step and usage objects built here, never
the database again, so no two places of a report can disagree.
"""
from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from blofin_pipeline.backtest import stats
from blofin_pipeline.market.window import DataLabel
from blofin_pipeline.ml.metrics import no_skill_baselines
from blofin_pipeline.numeric import mean_of_finite
from blofin_pipeline.ranking.power import day_power, track_record_days
from blofin_pipeline.reporting import day
from blofin_pipeline.reporting import strategies as strategies_module
from blofin_pipeline.reporting.forward import report_sections
from blofin_pipeline.reporting.health import portfolio_health
from blofin_pipeline.reporting.strategies import (
    EQUITY_LEADERS,
    changes_since_previous,
    equity_by_symbol,
    loads_or,
    public_strategy,
    strategy_rows,
)
from blofin_pipeline.ranking import power as power_module
from blofin_pipeline.store import to_json, utc_now
from blofin_pipeline.store.registry import trial_count
from blofin_pipeline.store.rankings import decisions_on
from blofin_pipeline.store.results import (
    ensemble_results_on,
    model_results_on,
    strategy_results_on,
)
from blofin_pipeline.strategies.status import statuses_on

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)

TOP_PERFORMERS = 10          # strategies listed as top performers
FAR_FUTURE_MS = 2**62        # "every candle" when the run's data end is not known
SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: this report was computed on the generated sample market, not on BloFin "
    "exchange candles. Its figures test the pipeline; they say nothing about real markets."
)

__all__ = ["build_report", "definitions", "loads_or", "refresh_llm_usage"]


def build_report(store: Store, run_date: str, *, synthetic: bool, config_dict: Mapping[str, Any],
                 run: Mapping[str, Any] | None = None, data_sources: Sequence[str] = ()) -> dict[str, Any]:
    """The day's report as a JSON-able dict (NaN written as None). ``run``: the run that
    makes it (run_id, triggered_at, data_end as ISO text); ``data_sources``: the scoring
    window's candles' own sources (`market.window.window_label`)."""
    run = dict(run or {})
    results = strategy_results_on(store, run_date)
    decisions = decisions_on(store, run_date)
    statuses = statuses_on(store, run_date)
    strategies = strategy_rows(results, [d for d in decisions if d["item_type"] == "strategy"], statuses)
    kept = [s for s in strategies if s["kept"]]
    models, ensembles = _ml_rows(store, run_date, decisions)
    activity = day.activity(store, run_date, decisions, statuses)
    health = portfolio_health(_registry_counts(statuses.values()), strategies, kept)
    data_quality = day.data_quality(store, run_date, _window_ms(run.get("data_end"), config_dict),
                                    list(config_dict.get("symbols") or []), str(config_dict.get("timeframe")))
    steps = day.run_steps(store, run_date, run.get("run_id"))
    llm = day.llm_usage(store, run_date)
    power = day_power(store, run_date)
    leaderboard = [{**public_strategy(s), **track_record_days(s["sharpe"], power)} for s in strategies]
    report = {
        "run_date": run_date,
        "generated_at": utc_now(),
        "run": run,
        "synthetic": bool(synthetic),
        "data_sources": list(data_sources),
        "data_notice": SYNTHETIC_NOTICE if synthetic else f"Market data: {DataLabel(tuple(data_sources)).description}.",
        "config": dict(config_dict),
        "summary": summary(strategies, kept, health, activity, data_quality, steps, llm,
                           n_models=len(models), n_ensembles=len(ensembles)),
        "power": power,
        "leaderboard": leaderboard,
        "top_performers": {
            "strategies": leaderboard[:TOP_PERFORMERS],
            "models": [m for m in models if m["status"] == "active"][:TOP_PERFORMERS],
            "ensembles": [e for e in ensembles if e["status"] == "active"][:TOP_PERFORMERS],
        },
        "models": models,
        "ensembles": ensembles,
        "equity": equity_by_symbol(store, results, strategies[:EQUITY_LEADERS], str(config_dict.get("timeframe"))),
        "changes": changes_since_previous(store, run_date, strategies),
        "trends": day.trends(store, run_date, [s["item"] for s in strategies[:EQUITY_LEADERS]]),
        "portfolio_health": health,
        "activity": activity,
        "data_quality": data_quality,
        "steps": steps,
        "llm_usage": llm,
        "definitions": definitions(),
        "ai_review": None,
        **report_sections(store, run_date),
    }
    report["summary"]["flags"] += report["forward"]["flags"]
    report["summary"]["power"] = power["text"] if power else None
    report["summary"]["text"] = summary_text(run_date, synthetic, report["summary"])
    return json.loads(to_json(report))


def _window_ms(data_end: str | None, config_dict: Mapping[str, Any]) -> tuple[int, int]:
    """The run's scoring window in epoch ms (every candle when its data end is not known)."""
    if not data_end:
        return 0, FAR_FUTURE_MS
    end = pd.Timestamp(data_end)
    days = int(config_dict.get("score_window_days") or 0)  # 0: every stored candle before the data end
    start_ms = int((end - pd.Timedelta(days=days)).value // 1_000_000) if days else 0
    return start_ms, int(end.value // 1_000_000)


def _registry_counts(records: Any) -> list[dict[str, Any]]:
    """The registry's size by category and status at the end of the date."""
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        counts[(r.category, r.status)] = counts.get((r.category, r.status), 0) + 1
    return [{"category": c, "status": s, "n": n} for (c, s), n in sorted(counts.items())]


def _ml_rows(store: Store, run_date: str, decisions: Sequence[Mapping[str, Any]]) -> tuple[list, list]:
    """The date's models and ensembles in ranking order, with the no-skill baselines."""
    out = []
    for rows_on, key, item_type in ((model_results_on, "model_name", "model"),
                                    (ensemble_results_on, "ensemble_name", "ensemble")):
        rows = rows_on(store, run_date)
        by_item = {d["item"]: d for d in decisions if d["item_type"] == item_type}
        for r in rows:
            d = by_item.get(r[key])
            r.update(rank=int(d["rank"]) if d else None, decision=d["decision"] if d else None,
                     **no_skill_baselines(r.get("up_share")))
            if "members" in r:
                r["members"] = loads_or(r["members"], default=[])
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r[key]))
        out.append(rows)
    return out[0], out[1]


def summary(strategies: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]], health: Mapping[str, Any],
            activity: Mapping[str, Any], data_quality: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
            llm: Mapping[str, Any], *, n_models: int, n_ensembles: int) -> dict[str, Any]:
    """The day in figures, each read from the object its section shows: the best strategy
    is the leaderboard's first, archived is the activity's count."""
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
        "strategies_scored": sum(1 for s in strategies if s["symbols"]),
        "strategies_ranked": sum(1 for s in strategies if s["decision"] is not None),
        "strategies_kept": len(kept),
        "strategies_archived": len(activity["archived"]["strategies"]),
        "failed_scoring": len(activity["failed_scoring"]),
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


def summary_text(run_date: str, synthetic: bool, s: Mapping[str, Any]) -> str:
    parts = [f"{run_date}{' (SYNTHETIC data)' if synthetic else ''}:"]
    parts.append(f"{s['strategies_scored']} strategies scored, {s['strategies_kept']} kept, "
                 f"{s['strategies_archived']} archived by the ranking.")
    if s["best_strategy"]:
        score = s["best_score"]
        parts.append(f"Best {s['best_strategy']} (score {score:.3f})." if score is not None
                     else f"Best {s['best_strategy']}.")
    parts.append(f"{len(s['significant'])} significant by deflated Sharpe"
                 + (f" ({s['power']})." if s.get("power") else "."))
    parts.append(f"{s['designed']} designed, {s['tuned']} tuned, {s['rejected']} rejected; "
                 f"{s['models']} models, {s['ensembles']} ensembles; LLM ${s['llm_usd']:.2f}.")
    if s["failed_steps"]:
        parts.append(f"Failed steps: {', '.join(s['failed_steps'])}.")
    return " ".join(parts)


def refresh_llm_usage(report: dict[str, Any], llm: Mapping[str, Any]) -> dict[str, Any]:
    """The report with the date's LLM usage read again (after the review's own calls): the
    usage section, the summary's cost and its text stay one figure."""
    out = {**report, "llm_usage": dict(llm), "summary": {**report["summary"], "llm_usd": llm["usd"]}}
    out["summary"]["text"] = summary_text(out["run_date"], bool(out.get("synthetic")), out["summary"])
    return json.loads(to_json(out))


def definitions() -> dict[str, str]:
    """How the report's figures are defined, from the docstrings of the code that computes
    them (one source: the definitions cannot drift from the code)."""
    return {
        "score": inspect.getdoc(stats.composite_score) or "",
        "deflated_sharpe": inspect.getdoc(stats.deflated_sharpe_ratio) or "",
        "trial_count": inspect.getdoc(trial_count) or "",
        "power": inspect.getdoc(power_module) or "",
        "leaderboard": inspect.getdoc(strategies_module) or "",
        "no_skill": inspect.getdoc(no_skill_baselines) or "",
    }
