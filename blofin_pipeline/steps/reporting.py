"""`generate_report` and `ai_review`: the day's report and its strategic review."""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from blofin_pipeline.backtest.stats import SIGNIFICANT_DSR
from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import LLMBudgetExceeded
from blofin_pipeline.market.window import load_window, window_label
from blofin_pipeline.steps.runner import llm_caller, require_scores, step
from blofin_pipeline.store import Store
from blofin_pipeline.store.knowledge import knowledge_on
from blofin_pipeline.store.rankings import decisions_on
from blofin_pipeline.store.results import review_rows

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMConnection

logger = logging.getLogger(__name__)


@step
def generate_report(ctx: RunContext, store: Store) -> dict[str, Any]:
    from blofin_pipeline.reporting import build_report, write_report

    require_scores(store, ctx.run_date)
    data = window_label(ctx, store)
    report = build_report(store, ctx.run_date, synthetic=data.synthetic, config_dict=ctx.config.to_dict(),
                          data_sources=data.sources)
    json_path, html_path = write_report(store, ctx.run_date, report, ctx.reports_dir)
    logger.info("report written: %s and %s (data: %s)", json_path, html_path, data.description)
    return {"json": str(json_path), "html": str(html_path), "synthetic": data.synthetic,
            "data_sources": list(data.sources)}


def review_facts(ctx: RunContext, store: Store) -> dict[str, Any]:
    """The day as the review sees it: per-symbol results, activity, regimes."""
    from blofin_pipeline.research.regime import detect_regimes

    rows = review_rows(store, ctx.run_date)
    strategies = [dict(r, name=f"{r['name']}@{r['version']}",
                       significant=bool(r["deflated_sharpe"] is not None and r["deflated_sharpe"] >= SIGNIFICANT_DSR))
                  for r in rows]
    kb = knowledge_on(store, ctx.run_date)
    count = {k: sum(1 for r in kb if r["kind"] == k) for k in ("designed", "tuned", "archived")}
    archived = sum(1 for d in decisions_on(store, ctx.run_date) if d["decision"] == "archived")
    rejected = [{"name": r["subject"], "reasons": json.loads(r["detail"]).get("reasons", [])}
                for r in kb if r["kind"] == "rejected"]
    return {"run_date": ctx.run_date, "strategies": strategies, "designed": count["designed"],
            "tuned": count["tuned"], "archived": archived + count["archived"], "rejected": rejected,
            "regimes": detect_regimes(load_window(ctx, store)), "synthetic": window_label(ctx, store).synthetic}


@step
def ai_review(ctx: RunContext, store: Store, *, llm: LLMConnection | None = None) -> dict[str, Any]:
    """Strategic review of the day (LLM, or rule-based offline), merged into the report."""
    from blofin_pipeline.reporting import merge_ai_review
    from blofin_pipeline.research.review import review_day

    require_scores(store, ctx.run_date)
    facts = review_facts(ctx, store)
    caller = llm_caller(llm, ctx, store)
    try:
        review = review_day(facts, llm=caller, model=caller.model_for("review") if caller else None)
    except LLMBudgetExceeded as err:
        # The budget stops the LLM, not the day's review: say so, and review by rule.
        logger.warning("ai_review: %s; writing the rule-based review instead", err)
        review = dict(review_day(facts, llm=None), note=f"LLM budget spent: {err}")
    json_path, html_path = merge_ai_review(store, ctx.run_date, review, ctx.reports_dir)
    return {"mode": review.get("mode"), "report": str(html_path),
            "recommendations": len(review.get("recommendations") or [])}
