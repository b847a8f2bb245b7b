"""`rank_and_update`: record the forward record, keep the best (blending it in), archive the
rest with a reason, log every decision, then write the day's signals of the kept."""
from __future__ import annotations

from typing import Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.steps.forward import record_forward, record_signals
from blofin_pipeline.steps.runner import require_scores, step
from blofin_pipeline.store import Store


@step
def rank_and_update(ctx: RunContext, store: Store) -> dict[str, Any]:
    from blofin_pipeline.ranking import rank
    from blofin_pipeline.ranking.forward import forward_summaries

    require_scores(store, ctx.run_date)
    forward = record_forward(ctx, store)
    outcome = rank(store, ctx.run_date, ctx.config, forward_summaries(store, ctx.run_date))
    return {**outcome, "forward": forward, "signals": record_signals(ctx, store)}
