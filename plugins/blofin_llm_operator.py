"""The operator of the LLM research tasks: a step that may wait for a Message Batch deferred.

`LLMStepOperator` runs one step of `blofin_pipeline.steps` through the adapter
(`blofin_airflow.run_llm_step`), like the `@task` tasks do. In batch mode (`llm_batch`) the
step collects its request instead of sending it; the operator submits it as a Message
Batch and defers to the Anthropic provider's `AnthropicBatchTrigger`, so no worker slot
(and no pool slot) is held while the batch runs; when the trigger fires, `execute_complete`
runs the step again with the batch's answers, or with none after a timeout (the step then
calls the API directly).

Imported by the DAG file at parse time: nothing heavy at module level.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperator

StepResolver = Callable[[], Callable[..., dict[str, Any]]]


class LLMStepOperator(BaseOperator):
    """Run an LLM step; in batch mode wait for its Message Batch in the triggerer.

    :param step: a function that imports and returns the step function (imported when the
        task runs, never at parse time).
    """

    ui_color = "#e8e0f7"

    def __init__(self, *, step: StepResolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step

    def execute(self, context: Any) -> dict[str, Any]:
        from blofin_airflow import run_llm_step

        return run_llm_step(self, context, self.step())

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the batch trigger fired: run the step again with the batch's answers."""
        from blofin_airflow import resume_llm_step

        return resume_llm_step(self, context, self.step(), event)
