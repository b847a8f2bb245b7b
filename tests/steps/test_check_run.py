"""The run's verdict: `check_run` fails the run when a research step failed; a step that stopped
on purpose is logged `stopped`, not `success`, and does not fail it."""
from __future__ import annotations

import pytest

from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.steps import check_run
from blofin_pipeline.steps.runner import step
from blofin_pipeline.store import open_store
from blofin_pipeline.store.runs import step_rows_on, upsert_step_row

DAY = "2026-04-10"


def make_ctx(tmp_path) -> RunContext:
    return RunContext.create(logical_date=DAY, data_end=DAY, config=PipelineConfig(), workspace=tmp_path,
                             db_url=f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}")


def log(ctx: RunContext, **statuses: str) -> None:
    with open_store(ctx.db_url) as store:
        for name, status in statuses.items():
            upsert_step_row(store, {"run_date": DAY, "step": name, "status": status, "started_at": "t",
                                    "error": "LLMError: HTTP 529\ntraceback" if status == "failed" else None})


def test_check_run_fails_the_run_when_a_research_step_failed_or_never_finished(tmp_path):
    ctx = make_ctx(tmp_path)
    log(ctx, design_strategies="failed", tune_strategies="running", train_ml_models="success",
        rank_and_update="success")
    with pytest.raises(PipelineError, match=r"research failed on 2026-04-10: design_strategies failed \(LLMError: "
                                            r"HTTP 529\); tune_strategies running; the ranking and the report ran"):
        check_run(ctx)
    with open_store(ctx.db_url) as store:
        assert {r["step"]: r["status"] for r in step_rows_on(store, DAY)}["check_run"] == "failed"


def test_a_budget_stop_is_logged_stopped_and_does_not_fail_the_run(tmp_path):
    ctx = make_ctx(tmp_path)

    @step
    def design_strategies(ctx, store):
        return {"designed": [], "stopped": "LLM budget spent: ..."}

    design_strategies(ctx)
    log(ctx, tune_strategies="success", train_ml_models="success")
    assert check_run(ctx) == {"research": {"design_strategies": "stopped", "tune_strategies": "success",
                                           "train_ml_models": "success"}, "stopped_on_purpose": ["design_strategies"]}
    log(ctx, train_ml_models="failed")
    with pytest.raises(PipelineError, match="train_ml_models failed"):
        check_run(ctx)


def test_a_research_step_missing_from_the_log_fails_the_run(tmp_path):
    ctx = make_ctx(tmp_path)
    log(ctx, design_strategies="success", tune_strategies="success")
    with pytest.raises(PipelineError, match="train_ml_models not run"):
        check_run(ctx)
