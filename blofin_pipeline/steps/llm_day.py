"""What the LLM steps of one day share: the caller per step, the day's prompt prefix, batch mode.

`day_prefix` reads the day's briefing from the data database (the portfolio as the day
started with its scores, the market regime, archive decisions and failed changes up to
yesterday) and the day's tools (the design tool for `n_designs`, the tune tool for the
day's tune targets, the review tool), so the design, tune and review calls send the same
bytes before their task and the prompt cache serves the second and later ones.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import LLMBatchPending
from blofin_pipeline.store import Store

if TYPE_CHECKING:
    from blofin_pipeline.llm.batch import BatchAnswers
    from blofin_pipeline.llm.caller import LLMConnection
    from blofin_pipeline.llm.policy import StructuredCaller
    from blofin_pipeline.llm.prefix import DayPrefix

logger = logging.getLogger(__name__)

#: How far back the briefing looks for archive decisions and failed changes.
HISTORY_DAYS = 14


def llm_caller(llm: LLMConnection | None, ctx: RunContext, store: Store, *, batch: BatchAnswers | None = None,
               batchable: bool = False) -> StructuredCaller | None:
    """The step's structured LLM caller, or None (offline) when there is no connection.

    The connection transports and configures; the run's `llm_budget_usd` is the daily
    budget; every attempt is reserved and settled in the `llm_usage` table of the step's
    Store. A `batchable` step of a run with `llm_batch` sends its first request through the
    Message Batches API (`batch`: the batch's answers when the step runs again).
    """
    if llm is None:
        return None
    from blofin_pipeline.llm.batch import BatchMode
    from blofin_pipeline.llm.policy import StructuredCaller
    from blofin_pipeline.store.usage import UsageLog

    budget = float(ctx.config.llm_budget_usd)
    mode = BatchMode(batch) if batchable and ctx.config.llm_batch else None
    logger.info("LLM caller for %s: budget $%.2f%s", ctx.run_date, budget, ", batch mode" if mode else "")
    return StructuredCaller(llm.create_message, UsageLog(store, ctx.run_date), settings=llm.settings,
                            budget_usd=budget, batch=mode)


def run_facts(ctx: RunContext, store: Store) -> dict[str, Any]:
    """The run's fixed facts the prompts state: bar size, costs, history, data (by the candles' source)."""
    from blofin_pipeline.market.window import window_label

    cfg = ctx.config
    return {"run_date": ctx.run_date, "timeframe": cfg.timeframe, "symbols": list(cfg.symbols), "fee": cfg.fee,
            "slippage": cfg.slippage, "history_days": cfg.history_days, "score_window_days": cfg.score_window_days,
            "wf_folds": cfg.wf_folds, "synthetic": window_label(ctx, store).synthetic}


def tune_targets(book: Sequence[Mapping[str, Any]], n_tunes: int) -> list[Mapping[str, Any]]:
    """The day's strategies to tune: the `n_tunes` scored ones with the lowest mean score."""
    from blofin_pipeline.research.diagnosis import pick_underperformers

    scored = [s for s in book if s.get("score") is not None]
    worst = pick_underperformers([{"name": s["ref"], "score": s["score"]} for s in scored], n_tunes)
    by_ref = {s["ref"]: s for s in scored}
    return [by_ref[w["name"]] for w in worst]


def day_prefix(ctx: RunContext, store: Store, llm: LLMConnection, candles: Mapping[str, pd.DataFrame]
               ) -> DayPrefix:
    """The day's shared prompt prefix: the tools of the day and the briefing's system blocks."""
    from blofin_pipeline.llm.prefix import build_day_prefix
    from blofin_pipeline.llm.tools import day_tools
    from blofin_pipeline.research.briefing import day_briefing
    from blofin_pipeline.research.designer import DesignContext
    from blofin_pipeline.research.regime import detect_regimes
    from blofin_pipeline.steps.research import portfolio
    from blofin_pipeline.store.knowledge import changes_since
    from blofin_pipeline.store.rankings import archived_since

    book = portfolio(store, ctx.run_date, with_code=True)
    context = DesignContext(run_date=ctx.run_date, symbols=tuple(ctx.config.symbols),
                            regimes=detect_regimes(candles), strategies=tuple(book))
    since = (pd.Timestamp(ctx.run_date) - pd.Timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%d")
    briefing = day_briefing(context, run=run_facts(ctx, store), archived=archived_since(store, since, ctx.run_date),
                            failures=changes_since(store, since, ctx.run_date))
    targets = {t["name"]: dict(t.get("param_space") or {}) for t in tune_targets(book, ctx.config.n_tunes)}
    tools = day_tools(categories=context.categories, n_designs=ctx.config.n_designs, tune_targets=targets)
    return build_day_prefix(briefing, tools=tools, ttl=llm.settings.ttl_for(ctx.config.llm_batch))


def submit_batch(ctx: RunContext, llm: LLMConnection, pending: LLMBatchPending) -> str:
    """Submit a step's collected requests as one Message Batch (unless it already was) and
    note the batch id on their reservations; return the batch id."""
    from blofin_pipeline.store import open_store
    from blofin_pipeline.store.usage import UsageLog

    if pending.batch_id:
        logger.info("%s: waiting again for Message Batch %s", pending.step, pending.batch_id)
        return pending.batch_id
    batch_id = llm.submit_batch(pending.requests)
    with open_store(ctx.db_url) as store:
        UsageLog(store, ctx.run_date).mark_batch([r["custom_id"] for r in pending.requests], batch_id)
    logger.info("%s: %d request(s) submitted as Message Batch %s", pending.step, len(pending.requests), batch_id)
    return batch_id


def run_batched(step_fn: Callable[..., dict[str, Any]], ctx: RunContext, *, llm: LLMConnection | None,
                **kwargs: Any) -> dict[str, Any]:
    """Run an LLM step; in batch mode submit its batch, wait for it in this process, run it again.

    For the CLI and `run_all`: Airflow waits for the batch in the triggerer instead.
    """
    from blofin_pipeline.llm.batch import wait_for_batch

    try:
        return step_fn(ctx, llm=llm, **kwargs)
    except LLMBatchPending as pending:
        if llm is None:  # pragma: no cover - a batch needs a connection
            raise
        batch_id = submit_batch(ctx, llm, pending)
        answers = wait_for_batch(batch_id, llm, llm.settings.batch)
        return step_fn(ctx, llm=llm, batch=answers, **kwargs)
