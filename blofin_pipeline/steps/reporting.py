"""`generate_report` and `ai_review`: the day's report and its strategic review; `check_run`."""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.market.window import load_window, window_label
from blofin_pipeline.steps.llm_day import day_prefix, llm_caller
from blofin_pipeline.steps.runner import require_scores, step
from blofin_pipeline.store import Store
from blofin_pipeline.store.reports import report_row
from blofin_pipeline.store.runs import step_rows_on

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMConnection

logger = logging.getLogger(__name__)


@step
def generate_report(ctx: RunContext, store: Store) -> dict[str, Any]:
    from blofin_pipeline.reporting import build_report, write_report

    require_scores(store, ctx.run_date)
    data = window_label(ctx, store)
    run = {"run_id": ctx.run_id, "triggered_at": ctx.triggered_at, "data_end": ctx.data_end.isoformat()}
    report = build_report(store, ctx.run_date, synthetic=data.synthetic, config_dict=ctx.config.to_dict(), run=run,
                          data_sources=data.sources)
    json_path, html_path = write_report(store, ctx.run_date, report, ctx.reports_dir)
    logger.info("report written: %s and %s (data: %s): %s", json_path, html_path, data.description,
                report["summary"]["text"])
    return {"json": str(json_path), "html": str(html_path), "synthetic": data.synthetic,
            "data_sources": list(data.sources)}


def review_facts(ctx: RunContext, store: Store) -> dict[str, Any]:
    """The day as the review sees it: the stored report's leaderboard (mean over symbols,
    ranks, decisions), its counts and rejections, plus the regimes of the run's window. The
    review reads the figures the report shows, so the two cannot disagree."""
    from blofin_pipeline.research.regime import detect_regimes

    row = report_row(store, ctx.run_date)
    if row is None:
        raise PipelineError(f"no daily report for {ctx.run_date} to review: run generate_report first")
    report = json.loads(row["report"])
    summary = report["summary"]
    strategies = [{"name": s["strategy"], "category": s["category"], "rank": s["rank"], "decision": s["decision"],
                   "score": s["score"], "sharpe": s["sharpe"], "total_return": s["total_return"],
                   "max_drawdown": s["max_drawdown"], "n_trades": s["n_trades"], "symbols": s["symbols"],
                   "significant": s["strategy"] in summary["significant"]} for s in report["leaderboard"]]
    return {"run_date": ctx.run_date, "strategies": strategies, "designed": summary["designed"],
            "tuned": summary["tuned"], "archived": summary["strategies_archived"],
            "rejected": report["activity"]["rejected"]["items"],
            "regimes": detect_regimes(load_window(ctx, store)), "synthetic": bool(report["synthetic"])}


@step
def ai_review(ctx: RunContext, store: Store, *, llm: LLMConnection | None = None) -> dict[str, Any]:
    """Strategic review of the day (LLM, or rule-based offline or when the LLM review cannot
    be had, labelled with the reason), merged into the report with the day's LLM cost,
    the review's own calls included."""
    from blofin_pipeline.reporting import merge_ai_review
    from blofin_pipeline.research.review import review_day

    require_scores(store, ctx.run_date)
    facts = review_facts(ctx, store)
    caller = llm_caller(llm, ctx, store)
    prefix = day_prefix(ctx, store, llm, load_window(ctx, store)) if llm is not None else None
    review = review_day(facts, llm=caller, model=caller.model_for("review") if caller else None, prefix=prefix)
    json_path, html_path = merge_ai_review(store, ctx.run_date, review, ctx.reports_dir)
    recommendations = list(review.get("recommendations") or [])
    logger.info("review (%s): %s", review.get("mode"), review.get("summary"))
    for i, text in enumerate(recommendations, start=1):
        logger.info("recommendation %d of %d: %s", i, len(recommendations), text)
    return {"mode": review.get("mode"), "fallback_reason": review.get("fallback_reason"), "report": str(html_path),
            "recommendations": recommendations}


#: The research steps whose failure fails the day's run (`check_run`).
RESEARCH_STEPS = ("design_strategies", "tune_strategies", "train_ml_models")


@step
def check_run(ctx: RunContext, store: Store) -> dict[str, Any]:
    """Fail the run when a research step failed, after ranking, reporting and review ran anyway.

    The DAG runs everything after the research group on `all_done`, so a failed research
    task alone would leave a green run; this last task turns it red. A research step that
    stopped on purpose (LLM budget spent) is reported, not failed.
    """
    statuses = {r["step"]: r for r in step_rows_on(store, ctx.run_date)}
    outcome = {name: (statuses[name]["status"] if name in statuses else "not run") for name in RESEARCH_STEPS}
    failed = {name: status for name, status in outcome.items() if status not in ("success", "stopped")}
    if failed:
        errors = "; ".join(f"{name} {status}" + (f" ({_first_line(statuses[name]['error'])})"
                                                  if name in statuses and statuses[name]["error"] else "")
                           for name, status in failed.items())
        raise PipelineError(f"research failed on {ctx.run_date}: {errors}; the ranking and the report ran "
                            "without it")
    stopped = [name for name, status in outcome.items() if status == "stopped"]
    return {"research": outcome, "stopped_on_purpose": stopped}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text and text.strip() else ""
