"""The contracts at the LLM boundary, as protocols.

- `LLMCaller`: what the research agents (designer, tuner, review) call: one typed call
  that returns the validated reply. `llm.policy.StructuredCaller` implements it; tests
  pass their own doubles.
- `MessageSender`: one Messages API call, keyword arguments as `messages.create` takes
  them, returning the SDK `Message` (with `stream=True` the request is streamed and the
  final message returned). Transport failures are raised as `LLMError` (with the request
  id when the API answered); transient HTTP errors are retried inside it (the SDK does),
  never by the policy.
- `BatchTransport`: the Message Batches API: submit, status, results, cancel.
- `LLMConnection`: what the Airflow hook hands the steps: a sender (`create_message`),
  the batch transport and the connection's `LLMSettings`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from blofin_pipeline.llm.prompts import Prompt
    from blofin_pipeline.llm.settings import LLMSettings

T = TypeVar("T", bound=BaseModel)


class LLMCaller(Protocol):
    """Ask `step`'s model for a reply of `reply_type`; return it validated.

    `categories` restricts a design's categories, `param_bounds` ({strategy: {param:
    (lo, hi)}}) a tuning's parameters. Raises LLMBudgetExceeded when the day's budget
    cannot cover the call, LLMResponseError when no valid reply came, LLMError when the
    call failed (and, in batch mode, LLMBatchPending while the request waits for its batch).
    """

    def __call__(
        self,
        step: str,
        prompt: Prompt,
        reply_type: type[T],
        *,
        categories: Sequence[str] | None = None,
        param_bounds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> T: ...


class MessageSender(Protocol):
    """One Messages API request (`tools` and `tool_choice`, or `output_config`, in `options`)."""

    def __call__(
        self, *, model: str, system: Any, messages: list[dict[str, Any]], max_tokens: int, **options: Any
    ) -> Any: ...


class BatchTransport(Protocol):
    """The Message Batches API, requests and results in the API's wire shape."""

    def submit_batch(self, requests: list[dict[str, Any]]) -> str:
        """Create a batch of ``{"custom_id", "params"}`` requests; return its id."""

    def batch_status(self, batch_id: str) -> str:
        """The batch's `processing_status` (in_progress, canceling, ended)."""

    def batch_results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """Each request's `result` (``{"type": "succeeded", "message": {...}}``, ...) by custom id."""

    def cancel_batch(self, batch_id: str) -> Any:
        """Ask the API to cancel the batch."""


class LLMConnection(Protocol):
    """A configured LLM endpoint: its message call, its batch transport and its settings."""

    @property
    def settings(self) -> LLMSettings: ...

    def create_message(
        self, *, model: str, system: Any, messages: list[dict[str, Any]], max_tokens: int, **options: Any
    ) -> Any: ...

    def submit_batch(self, requests: list[dict[str, Any]]) -> str: ...

    def batch_status(self, batch_id: str) -> str: ...

    def batch_results(self, batch_id: str) -> dict[str, dict[str, Any]]: ...

    def cancel_batch(self, batch_id: str) -> Any: ...
