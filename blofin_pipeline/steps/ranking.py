"""`rank_and_update`: keep the best, archive the rest with a reason, log every decision."""
from __future__ import annotations

from typing import Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.steps.runner import require_scores, step
from blofin_pipeline.store import Store


@step
def rank_and_update(ctx: RunContext, store: Store) -> dict[str, Any]:
    from blofin_pipeline.ranking import rank

    require_scores(store, ctx.run_date)
    return rank(store, ctx.run_date, ctx.config)
