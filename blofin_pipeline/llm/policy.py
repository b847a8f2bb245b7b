"""The structured-call policy: a validated reply per call, the daily budget, a ledger row per attempt.

`StructuredCaller` implements `LLMCaller` on top of a `MessageSender` (the hook's
`create_message`, or any `messages.create`) and a `UsageLedger`:
- the request: the prompt's system blocks (their `cache_control` kept) and the day's
  tools when the prompt shares them (else the call's own constrained tool, `llm.tools`),
  `tool_choice` forced unless the model rejects it, or the same schema as
  `output_config.format`; the step's model and `max_tokens`; streamed when `max_tokens`
  is large;
- before each attempt its worst-case cost is reserved in the ledger, in the transaction
  that checks the budget (LLMBudgetExceeded when the day cannot cover it);
- every attempt, answered, invalid or failed, is settled in its own ledger row (a local
  id, never the server's request id) with tokens, cache tokens, SDK retries and USD;
- a reply that does not parse or validate is sent back once with the validation error
  (an answer cut at max_tokens gets twice the room), then LLMResponseError;
- batch mode (`llm.batch`): the first attempt goes through the Message Batches API.
Transient HTTP errors are the sender's (the SDK retries them) and whole-task failures are
Airflow's: the validation retry is the only retry here.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from blofin_pipeline.exceptions import (
    ConfigError,
    LLMBatchPending,
    LLMError,
    LLMResponseError,
)
from blofin_pipeline.llm.batch import BatchMode, result_message
from blofin_pipeline.llm.budget import (
    STATUS_ERROR,
    STATUS_INVALID,
    STATUS_OK,
    UsageLedger,
    budget_check,
    build_usage_row,
    worst_case_usd,
)
from blofin_pipeline.llm.parsing import message_to_dict, parse_reply
from blofin_pipeline.llm.prompts import validation_feedback
from blofin_pipeline.llm.schemas import tool_name
from blofin_pipeline.llm.settings import LLMSettings
from blofin_pipeline.llm.tools import reply_tool

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


def build_request(settings: LLMSettings, step: str, prompt: Prompt, reply_type: type[BaseModel], *,
                  categories: Sequence[str] | None = None,
                  param_bounds: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The Messages API request of a structured call (model, max_tokens, system, tools, messages)."""
    model = settings.model_for(step)
    name = tool_name(reply_type)
    tools = list(prompt.tools) if prompt.tools else [reply_tool(reply_type, categories=categories,
                                                                 param_bounds=param_bounds)]
    own = [t for t in tools if t["name"] == name]
    if not own:
        raise ConfigError(f"step {step!r}: the prompt's tools do not include {name!r}")
    user = prompt.user
    request: dict[str, Any] = {"model": model, "max_tokens": settings.max_tokens_for(step)}
    if settings.structured_output == "tool":
        request["tools"] = tools
        request["tool_choice"] = settings.tool_choice_for(model, name)
    else:
        request["output_config"] = {"format": {"type": "json_schema", "schema": own[0]["input_schema"]}}
        user += JSON_ONLY_NOTE
    request["system"] = prompt.system if isinstance(prompt.system, str) else list(prompt.system)
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


def retry_request(request: Mapping[str, Any], reply: Mapping[str, Any], error: str) -> dict[str, Any]:
    """The request of the validation retry: the conversation plus the error (more room when cut)."""
    retry = {**request, "messages": list(request["messages"]) + feedback_turns(reply, error)}
    if reply.get("stop_reason") == "max_tokens":
        # the answer did not fit: give the retry room to finish
        retry["max_tokens"] = min(2 * int(request["max_tokens"]), MAX_RETRY_TOKENS)
    return retry


@dataclass
class Attempt:
    """One reserved attempt of a call, until it is settled."""

    attempt_id: str
    step: str
    number: int
    model: str
    mode: str
    started: float
    request_id: str | None = None
    http_retries: int = 0
    latency_ms: float = 0.0


class StructuredCaller:
    """`LLMCaller` with the policy above.

    :param send: one Messages API call (`MessageSender`).
    :param ledger: where each attempt is reserved and settled (`UsageLedger`).
    :param settings: model routing, max tokens, prices, reply mode (default: built-ins).
    :param budget_usd: the daily budget in USD; None: no budget.
    :param batch: batch mode (`llm.batch.BatchMode`) for the first attempt; None: direct.
    """

    def __init__(self, send: MessageSender, ledger: UsageLedger, *, settings: LLMSettings | None = None,
                 budget_usd: float | None = None, batch: BatchMode | None = None) -> None:
        self.send = send
        self.ledger = ledger
        self.settings = settings or LLMSettings()
        self.budget_usd = budget_usd
        self.batch = batch

    def __repr__(self) -> str:
        return f"StructuredCaller(budget_usd={self.budget_usd!r}, ledger={self.ledger!r})"

    def model_for(self, step: str) -> str:
        return self.settings.model_for(step)

    def __call__(self, step: str, prompt: Prompt, reply_type: type[T], *,
                 categories: Sequence[str] | None = None,
                 param_bounds: Mapping[str, Mapping[str, Any]] | None = None) -> T:
        request = build_request(self.settings, step, prompt, reply_type, categories=categories,
                                param_bounds=param_bounds)
        tool = tool_name(reply_type) if "tools" in request else None
        reply, attempt = self._first_reply(step, request)
        error: LLMResponseError | None = None
        for number in (1, 2):
            if number == 2:
                request = retry_request(request, reply, str(error))
                reply, attempt = self._send(step, 2, request)
            try:
                value = parse_reply(reply, reply_type, tool=tool, categories=categories, param_bounds=param_bounds)
            except LLMResponseError as err:
                error = err
                self._settle(attempt, reply.get("usage"), STATUS_INVALID, error=str(err))
                logger.warning("LLM %s reply invalid (attempt %d): %s", step, number, err)
                continue
            self._settle(attempt, reply.get("usage"), STATUS_OK)
            return value
        raise LLMResponseError(
            f"step {step!r}: reply of model {request['model']!r} still invalid after one retry "
            f"(request id {attempt.request_id}): {error}", request_id=attempt.request_id) from error

    # --- attempts ----------------------------------------------------------------------
    def _reserve(self, step: str, number: int, request: Mapping[str, Any], mode: str) -> Attempt:
        factor = self.settings.batch.price_factor if mode == "batch" else 1.0
        reserved = worst_case_usd(request, self.settings.prices, price_factor=factor)
        attempt_id = self.ledger.reserve(step=step, attempt=number, model=str(request["model"]), mode=mode,
                                         reserved_usd=reserved, check=budget_check(self.budget_usd, reserved, step=step))
        return Attempt(attempt_id, step, number, str(request["model"]), mode, time.monotonic())

    def _first_reply(self, step: str, request: dict[str, Any]) -> tuple[dict[str, Any], Attempt]:
        """The first attempt: direct, or collected for / answered from the step's batch."""
        if self.batch is None:
            return self._send(step, 1, request)
        if self.batch.collecting:
            waiting = self.ledger.open_batch_attempts(step)
            submitted = next((row["request_id"] for row in waiting if row.get("request_id")), None)
            if submitted is None:
                attempt = self._reserve(step, 1, request, "batch")
                raise LLMBatchPending(step, [{"custom_id": attempt.attempt_id, "params": request}])
            raise LLMBatchPending(step, [{"custom_id": row["attempt_id"], "params": request} for row in waiting],
                                  batch_id=submitted)
        return self._batch_reply(step, request)

    def _batch_reply(self, step: str, request: dict[str, Any]) -> tuple[dict[str, Any], Attempt]:
        answers = self.batch.answers  # type: ignore[union-attr]
        found: tuple[dict[str, Any], Attempt] | None = None
        for row in self.ledger.open_batch_attempts(step):
            attempt = Attempt(row["attempt_id"], step, int(row.get("attempt") or 1), str(row["model"]), "batch",
                              time.monotonic(), request_id=answers.batch_id)
            message, why = result_message(answers.results.get(row["attempt_id"]))
            if message is not None and found is None:
                found = (message, attempt)
                continue
            why = (answers.failure or why) if message is None else "a second answer for one call: not used"
            self._settle(attempt, message.get("usage") if message else None, STATUS_ERROR, error=why)
            logger.warning("LLM %s: batch %s gave no usable answer (%s)", step, answers.batch_id, why)
        if found is None:
            logger.warning("LLM %s: no answer from batch %s: calling directly", step, answers.batch_id)
            return self._send(step, 1, request)
        return found

    def _send(self, step: str, number: int, request: dict[str, Any]) -> tuple[dict[str, Any], Attempt]:
        """One direct (or streamed) request; a failure is settled, then raised naming the step."""
        streamed = self.settings.streams(int(request["max_tokens"]))
        attempt = self._reserve(step, number, request, "stream" if streamed else "direct")
        try:
            message = self.send(**request, **({"stream": True} if streamed else {}))
        except LLMError as err:
            attempt.request_id = err.request_id
            self._settle(attempt, None, STATUS_ERROR, error=str(err))
            raise type(err)(f"step {step!r}: {err}", request_id=err.request_id) from err
        reply = message_to_dict(message)
        # The SDK keeps the `request-id` header on the message; the hook adds its retries.
        attempt.request_id = getattr(message, "_request_id", None)
        attempt.http_retries = int(reply.pop("http_retries", 0) or 0)
        return reply, attempt

    def _settle(self, attempt: Attempt, usage: Any, status: str, *, error: str | None = None) -> None:
        batch = attempt.mode == "batch"
        latency_ms = (time.monotonic() - attempt.started) * 1000 if not batch else 0.0
        row = build_usage_row(
            step=attempt.step, model=attempt.model, usage=usage, latency_ms=latency_ms,
            request_id=attempt.request_id, status=status, prices=self.settings.prices,
            price_factor=self.settings.batch.price_factor if batch else 1.0,
            cache_factor=self.settings.batch.cache_factor if batch else None,
            http_retries=attempt.http_retries, error=error)
        self.ledger.settle(attempt.attempt_id, row)
        logger.info(
            "LLM %s attempt %d (%s): model %s, %d input + %d output tokens (cache write %d, read %d), "
            "$%.4f, %d ms, %d SDK retries, request %s, %s", attempt.step, attempt.number, attempt.mode,
            attempt.model, row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"],
            row["cache_read_tokens"], row["usd"], row["latency_ms"], row["http_retries"], attempt.request_id,
            status)
