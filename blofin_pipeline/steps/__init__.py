"""The DAG's steps, one function per task id, each taking a RunContext.

A DAG task imports its step here and calls it (through the Airflow adapter, which builds
the RunContext); the step orchestrates the domain code. Every step writes the step log
(`steps.runner.step`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.steps.llm_day import run_batched
from blofin_pipeline.steps.market import ingest_candles
from blofin_pipeline.steps.ranking import rank_and_update
from blofin_pipeline.steps.reporting import ai_review, check_run, generate_report
from blofin_pipeline.steps.ml import ml_market_panel, train_ml_group, train_ml_models
from blofin_pipeline.steps.research import design_strategies, tune_strategies
from blofin_pipeline.steps.scoring import backtest_candidates, plan_scoring, score_strategies

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMConnection

__all__ = ["ai_review", "backtest_candidates", "check_run", "design_strategies", "generate_report", "ingest_candles",
           "ml_market_panel", "plan_scoring", "rank_and_update", "run_all", "score_strategies", "train_ml_group",
           "train_ml_models", "tune_strategies"]


def run_all(ctx: RunContext, *, llm: LLMConnection | None = None, n_chunks: int | None = None) -> dict[str, Any]:
    """Every step in DAG order, in this process (tests and the CLI; Airflow runs the DAG).

    As in the DAG, a failing research branch does not stop the steps after it, and the last
    step, `check_run`, says the run failed (its error is in `out["check_run"]`). In batch
    mode the design and tune batches are waited for in this process. Scoring runs the
    chunks of `plan_scoring`, or ``n_chunks`` of them when given.
    """
    out: dict[str, Any] = {"ingest_candles": ingest_candles(ctx)}
    chunks = plan_scoring(ctx)["chunks"] if n_chunks is None else \
        [{"chunk": i, "n_chunks": n_chunks} for i in range(n_chunks)]
    out["score_strategies"] = [score_strategies(ctx, **chunk) for chunk in chunks]
    research = (("design_strategies", lambda: run_batched(design_strategies, ctx, llm=llm)),
                ("tune_strategies", lambda: run_batched(tune_strategies, ctx, llm=llm)),
                ("train_ml_models", lambda: run_ml(ctx)))
    for name, fn in research:
        out[name] = _recorded(fn)
    out["backtest_candidates"] = backtest_candidates(ctx)
    out["rank_and_update"] = rank_and_update(ctx)
    out["generate_report"] = generate_report(ctx)
    out["ai_review"] = ai_review(ctx, llm=llm)
    out["check_run"] = _recorded(lambda: check_run(ctx))
    return out


def run_ml(ctx: RunContext) -> dict[str, Any]:
    """The ML steps in this process: the panel, each symbol group in turn, the reduce."""
    prepared = ml_market_panel(ctx)
    groups = [train_ml_group(ctx, **work) for work in prepared["groups"]]
    return train_ml_models(ctx, groups=groups)


def _recorded(fn: Any) -> dict[str, Any]:
    """A step's summary, or its error (already in pipeline_runs by the step log): the run goes on."""
    try:
        return fn()
    except Exception as err:
        return {"error": f"{type(err).__name__}: {err}"}
