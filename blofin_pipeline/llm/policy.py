"""The structured-call policy: a validated reply per call, the daily budget, a ledger row per attempt.

`StructuredCaller` implements `LLMCaller` on top of a `MessageSender` (the hook's
`create_message`, or any `messages.create`) and a `UsageLedger`:
- the request: the prompt's system blocks (their `cache_control` kept), the reply schema
  offered as a tool (`tool_choice` forced unless the model rejects it) or as
  `output_config.format` JSON schema, the step's model and `max_tokens`;
- before each request the ledger's spend for the day is checked against the budget;
- every HTTP call, failed or not, gives one usage row to the ledger;
- a reply that does not parse or validate is sent back once with the validation error
  (an answer cut at max_tokens gets twice the room), then LLMResponseError.
Transient HTTP errors are the sender's (the SDK retries them) and whole-task failures are
Airflow's: this is the only retry here.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from blofin_pipeline.exceptions import LLMError, LLMResponseError
from blofin_pipeline.llm.budget import (
    STATUS_ERROR,
    STATUS_INVALID,
    STATUS_OK,
    UsageLedger,
    build_usage_row,
    check_budget,
)
from blofin_pipeline.llm.parsing import message_to_dict, parse_reply
from blofin_pipeline.llm.prompts import validation_feedback
from blofin_pipeline.llm.schemas import json_schema, tool_definition, tool_name
from blofin_pipeline.llm.settings import LLMSettings

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import MessageSender
    from blofin_pipeline.llm.prompts import Prompt

T = TypeVar("T", bound=BaseModel)

logger = logging.getLogger(__name__)

#: Ceiling for the retry of a reply cut at max_tokens (its budget is doubled up to this).
MAX_RETRY_TOKENS = 32000
JSON_ONLY_NOTE = (
    "\n\nNo tool is available in this request: answer with exactly one JSON object that "
    "matches the required schema, and nothing else."
)


def build_request(settings: LLMSettings, step: str, prompt: Prompt, reply_type: type[BaseModel]
                  ) -> dict[str, Any]:
    """The Messages API request of a structured call (model, max_tokens, system, messages, schema)."""
    model = settings.model_for(step)
    user = prompt.user
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": settings.max_tokens_for(step),
        "system": prompt.system if isinstance(prompt.system, str) else list(prompt.system),
    }
    if settings.structured_output == "tool":
        request["tools"] = [tool_definition(reply_type)]
        request["tool_choice"] = settings.tool_choice_for(model, tool_name(reply_type))
    else:
        request["output_config"] = {"format": {"type": "json_schema", "schema": json_schema(reply_type)}}
        user += JSON_ONLY_NOTE
    request["messages"] = [{"role": "user", "content": user}]
    return request


def feedback_turns(reply: Mapping[str, Any], error: str) -> list[dict[str, Any]]:
    """The assistant's invalid turn plus a user turn carrying the validation error.

    A tool call must be answered by a tool_result, so the error goes back as an error
    result of each tool call; a text answer gets a plain user message.
    """
    content = [dict(b) for b in reply.get("content") or [] if isinstance(b, Mapping)]
    feedback = validation_feedback(error)
    turns: list[dict[str, Any]] = []
    if content:
        turns.append({"role": "assistant", "content": content})
    tool_ids = [b["id"] for b in content if b.get("type") == "tool_use" and b.get("id")]
    if tool_ids:
        turns.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tid, "is_error": True, "content": feedback} for tid in tool_ids
        ]})
    else:
        turns.append({"role": "user", "content": feedback})
    return turns


class StructuredCaller:
    """`LLMCaller` with the policy above.

    :param send: one Messages API call (`MessageSender`).
    :param ledger: where each call's usage row goes, and the day's spend (`UsageLedger`).
    :param settings: model routing, max tokens, prices, reply mode (default: built-ins).
    :param budget_usd: the daily budget in USD; None: no budget.
    """

    def __init__(self, send: MessageSender, ledger: UsageLedger, *, settings: LLMSettings | None = None,
                 budget_usd: float | None = None) -> None:
        self.send = send
        self.ledger = ledger
        self.settings = settings or LLMSettings()
        self.budget_usd = budget_usd

    def __repr__(self) -> str:
        return f"StructuredCaller(budget_usd={self.budget_usd!r}, ledger={self.ledger!r})"

    def model_for(self, step: str) -> str:
        return self.settings.model_for(step)

    def __call__(self, step: str, prompt: Prompt, reply_type: type[T], *,
                 categories: Sequence[str] | None = None,
                 param_bounds: Mapping[str, Mapping[str, Any]] | None = None) -> T:
        request = build_request(self.settings, step, prompt, reply_type)
        model = request["model"]
        tool = tool_name(reply_type) if "tools" in request else None
        for attempt in (1, 2):
            check_budget(self.ledger.spent_usd(), self.budget_usd, step=step)
            reply, request_id, latency_ms = self._send(step, attempt, request)
            try:
                value = parse_reply(reply, reply_type, tool=tool, categories=categories, param_bounds=param_bounds)
            except LLMResponseError as err:
                error = err
            else:
                self._record(step, attempt, model, reply.get("usage"), latency_ms, request_id, STATUS_OK)
                return value
            self._record(step, attempt, model, reply.get("usage"), latency_ms, request_id, STATUS_INVALID)
            if attempt == 2:
                raise LLMResponseError(
                    f"step {step!r}: reply of model {model!r} still invalid after one retry "
                    f"(request id {request_id}): {error}", request_id=request_id) from error
            logger.warning("LLM %s reply invalid, retrying once with the error: %s", step, error)
            request = {**request, "messages": request["messages"] + feedback_turns(reply, str(error))}
            if reply.get("stop_reason") == "max_tokens":
                # the answer did not fit: give the retry room to finish
                request["max_tokens"] = min(2 * request["max_tokens"], MAX_RETRY_TOKENS)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, step: str, attempt: int, request: dict[str, Any]) -> tuple[dict[str, Any], str | None, float]:
        """One request: (reply dict, request id, latency ms); a failure is recorded, then raised naming the step."""
        started = time.monotonic()
        try:
            message = self.send(**request)
        except LLMError as err:
            self._record(step, attempt, request["model"], {}, (time.monotonic() - started) * 1000, err.request_id,
                         STATUS_ERROR)
            raise type(err)(f"step {step!r}: {err}", request_id=err.request_id) from err
        latency_ms = (time.monotonic() - started) * 1000
        # The SDK keeps the `request-id` header on the message it returns.
        return message_to_dict(message), getattr(message, "_request_id", None), latency_ms

    def _record(self, step: str, attempt: int, model: str, usage: Any, latency_ms: float, request_id: str | None,
                status: str) -> None:
        row = build_usage_row(step=step, model=model, usage=usage, latency_ms=latency_ms, request_id=request_id,
                              status=status, prices=self.settings.prices)
        self.ledger.record(row)
        logger.info(
            "LLM %s attempt %d: model %s, %d input + %d output tokens (cache write %d, read %d), "
            "$%.4f, %d ms, request %s, %s", step, attempt, model, row["input_tokens"], row["output_tokens"],
            row["cache_creation_tokens"], row["cache_read_tokens"], row["usd"], row["latency_ms"], request_id,
            status)
