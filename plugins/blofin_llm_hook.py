"""Airflow hook for the pipeline's Claude calls, built on the Anthropic provider's hook.

`BlofinLLMHook` adds what the research loop needs on top of `AnthropicHook`: model routing
per step, structured replies validated into typed objects (one retry that carries the
validation error back to the model), token and cost accounting of every call through a
`usage_sink` callback, and a daily USD budget checked before each request. Prompts,
schemas, parsing and prices are pure code in `blofin_pipeline.llm`.

Connection `anthropic_default` (conn type `anthropic`): API key in the password, optional
base URL in the host. Extras read here, all optional:
- `models`: `{"design": "...", "tune": "...", "review": "...", "summary": "..."}`;
- `structured_output`: `"tool"` (default; the reply schema is offered as a tool) or
  `"json_schema"` (`output_config.format`, the JSON comes back as text);
- `tool_choice`: `"tool"` (force the reply tool), `"any"` or `"auto"`; default `"tool"`,
  except `"auto"` for the models that reject forced tool use (Opus/Sonnet 5.5);
- `max_tokens`: `{"design": 12000, ...}`; `daily_budget_usd`: used when the caller gives none;
- `prices`: `{"model-id": {"input": .., "output": .., "cache_write_5m": .., "cache_write_1h": ..,
  "cache_read": ..}}` (USD per MTok) for models missing from the built-in table;
- `anthropic_client_kwargs`: forwarded to the SDK client (e.g. `{"max_retries": 2,
  "timeout": 120}`); the SDK retries 408/409/429/5xx itself, honouring `retry-after`.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import anthropic
from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
from airflow.sdk.exceptions import AirflowNotFoundException
from pydantic import BaseModel

from blofin_pipeline.exceptions import ConfigError, LLMError, LLMResponseError
from blofin_pipeline.llm.budget import (
    LLM_USAGE_KEY,
    STATUS_ERROR,
    STATUS_INVALID,
    STATUS_OK,
    build_usage_row,
    check_budget,
    usage_record,
)
from blofin_pipeline.llm.models import (
    ModelPrice,
    resolve_model,
    supports_forced_tool_use,
)
from blofin_pipeline.llm.parsing import message_to_dict, parse_reply
from blofin_pipeline.llm.prompts import PROMPT_BUILDERS, validation_feedback
from blofin_pipeline.llm.schemas import (
    REPLY_TYPES,
    json_schema,
    tool_definition,
    tool_name,
)

if TYPE_CHECKING:
    from blofin_pipeline.config import RunContext

T = TypeVar("T", bound=BaseModel)

logger = logging.getLogger(__name__)

UsageSink = Callable[[dict[str, Any]], None]
#: What the research code calls: llm(step, system_blocks, user_message, reply_type) -> LLMResult.
LLMCaller = Callable[..., "LLMResult[Any]"]

#: Today's spend for the budget. Kept beside the ledger that writes the rows it sums.
DEFAULT_MAX_TOKENS: Mapping[str, int] = {"design": 12000, "tune": 8000, "review": 4000, "summary": 1000}
#: Ceiling for the retry of a reply cut at max_tokens (its budget is doubled up to this).
MAX_RETRY_TOKENS = 32000
#: Client options used unless the connection's `anthropic_client_kwargs` sets them: the SDK
#: default timeout is 10 minutes, too long for a task that has a pool slot.
DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = {"timeout": 300.0, "max_retries": 2}
STRUCTURED_MODES = ("tool", "json_schema")
TOOL_CHOICES = ("tool", "any", "auto")
JSON_ONLY_NOTE = (
    "\n\nNo tool is available in this request: answer with exactly one JSON object that "
    "matches the required schema, and nothing else."
)


class LLMResult(NamedTuple, Generic[T]):
    """A validated reply and the usage rows of every call it took (one, or two on a retry)."""

    value: T
    usage: list[dict[str, Any]]

    @property
    def usd(self) -> float:
        return sum(row["usd"] for row in self.usage)


class BlofinLLMHook(AnthropicHook):
    """Claude for the research steps: routed models, validated replies, costs and a budget.

    :param conn_id: Anthropic connection id (default `anthropic_default`).
    """

    conn_name_attr = "conn_id"
    default_conn_name = "anthropic_default"
    conn_type = "anthropic"
    hook_name = "BloFin LLM (Anthropic)"

    def __init__(self, conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.conn_id!r})"

    # --- connection ------------------------------------------------------------------
    @classmethod
    def connection_available(cls, conn_id: str = default_conn_name) -> bool:
        """True when connection `conn_id` can be read; False (never an exception) otherwise."""
        try:
            cls.get_connection(conn_id)
        except AirflowNotFoundException:
            return False
        except Exception as err:
            # Inside a task the SDK reports a missing connection as AirflowRuntimeError
            # CONNECTION_NOT_FOUND; any other lookup failure also means "run offline", said
            # in the log by type only (a message could quote a connection URI).
            if "CONNECTION_NOT_FOUND" not in str(err):
                logger.warning("connection %r unreadable (%s); treating it as missing", conn_id, type(err).__name__)
            return False
        return True

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self._connection.extra_dejson or {})

    def get_conn(self) -> anthropic.Anthropic:
        """The SDK client from the connection, with this hook's default timeout and retries."""
        client = super().get_conn()
        configured = self._extras.get("anthropic_client_kwargs") or {}
        defaults = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k not in configured}
        return client.with_options(**defaults) if defaults else client

    @cached_property
    def step_models(self) -> dict[str, str]:
        """Model per step from the connection's `models` extra (may be empty)."""
        models = self._extras.get("models") or {}
        if not isinstance(models, Mapping):
            raise ConfigError(f"connection {self.conn_id!r}: extra 'models' must be an object")
        return dict(models)

    @cached_property
    def prices(self) -> dict[str, ModelPrice]:
        """Price overrides from the connection's `prices` extra."""
        raw = self._extras.get("prices") or {}
        try:
            return {model: ModelPrice(**fields) for model, fields in raw.items()}
        except TypeError as err:
            raise ConfigError(f"connection {self.conn_id!r}: bad 'prices' extra: {err}") from err

    @cached_property
    def structured_mode(self) -> str:
        mode = self._extras.get("structured_output", "tool")
        if mode not in STRUCTURED_MODES:
            raise ConfigError(f"connection {self.conn_id!r}: structured_output {mode!r} not in {STRUCTURED_MODES}")
        return mode

    def model_for(self, step: str, model: str | None = None) -> str:
        """Model id for a step: argument, else connection extra `models`, else the default."""
        return resolve_model(step, self.step_models, model)

    def _tool_choice(self, model: str, tool: str) -> dict[str, Any]:
        choice = self._extras.get("tool_choice") or ("tool" if supports_forced_tool_use(model) else "auto")
        if choice not in TOOL_CHOICES:
            raise ConfigError(f"connection {self.conn_id!r}: tool_choice {choice!r} not in {TOOL_CHOICES}")
        if choice == "tool":
            return {"type": "tool", "name": tool}
        return {"type": choice}

    def _max_tokens(self, step: str, max_tokens: int | None) -> int:
        if max_tokens is not None:
            return max_tokens
        configured = self._extras.get("max_tokens") or {}
        return int(configured.get(step) or DEFAULT_MAX_TOKENS[step])

    def _redact(self, text: str) -> str:
        """Defence in depth: never let the API key travel in a message."""
        key = self._connection.password
        return text.replace(key, "***") if key else text

    def test_connection(self) -> tuple[bool, str]:
        """List the models with the configured key (no tokens spent)."""
        ok, message = super().test_connection()
        return ok, self._redact(message)

    # --- calls ---------------------------------------------------------------------------
    def _create(
        self,
        step: str,
        model: str,
        request: dict[str, Any],
        *,
        logical_date: date | datetime | str | None,
        usage_sink: UsageSink | None,
    ) -> tuple[dict[str, Any], str | None, float]:
        """One messages.create (SDK retries included); returns (reply dict, request id, latency ms)."""
        started = time.monotonic()
        try:
            message = self.conn.messages.create(**request)
        except anthropic.APIStatusError as err:
            self._emit(usage_sink, build_usage_row(
                step=step, model=model, usage={}, latency_ms=(time.monotonic() - started) * 1000,
                logical_date=logical_date, request_id=err.request_id, status=STATUS_ERROR, prices=self.prices))
            error_type = (err.body or {}).get("error", {}).get("type") if isinstance(err.body, dict) else None
            raise LLMError(self._redact(
                f"step {step!r}: Anthropic API answered HTTP {err.status_code} ({error_type or 'error'}) "
                f"for model {model!r} after the SDK's retries; request id {err.request_id}"
            )) from err
        except anthropic.APITimeoutError as err:
            self._emit_failure(usage_sink, step, model, started, logical_date)
            raise LLMError(f"step {step!r}: request to model {model!r} timed out after the SDK's retries") from err
        except anthropic.APIConnectionError as err:
            self._emit_failure(usage_sink, step, model, started, logical_date)
            raise LLMError(f"step {step!r}: could not reach the Anthropic API for model {model!r} "
                           f"({type(err.__cause__ or err).__name__})") from err
        except (json.JSONDecodeError, anthropic.APIResponseValidationError) as err:
            self._emit_failure(usage_sink, step, model, started, logical_date)
            raise LLMResponseError(f"step {step!r}: the API's reply body for model {model!r} is malformed: "
                                   f"{type(err).__name__}") from err
        latency_ms = (time.monotonic() - started) * 1000
        return message_to_dict(message), getattr(message, "_request_id", None), latency_ms

    def _emit_failure(self, usage_sink: UsageSink | None, step: str, model: str, started: float,
                      logical_date: date | datetime | str | None) -> None:
        self._emit(usage_sink, build_usage_row(
            step=step, model=model, usage={}, latency_ms=(time.monotonic() - started) * 1000,
            logical_date=logical_date, request_id=None, status=STATUS_ERROR, prices=self.prices))

    @staticmethod
    def _emit(usage_sink: UsageSink | None, row: dict[str, Any]) -> None:
        if usage_sink is not None:
            usage_sink(row)

    def generate_structured(
        self,
        step: str,
        system_blocks: Sequence[Mapping[str, Any]] | str,
        user_message: str,
        reply_type: type[T] | None = None,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        logical_date: date | datetime | str | None = None,
        usage_sink: UsageSink | None = None,
        spent_today: Callable[[], float] | None = None,
        budget_usd: float | None = None,
        categories: Sequence[str] | None = None,
        param_bounds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> LLMResult[T]:
        """Ask `step`'s model for a reply of `reply_type` and return it validated.

        Checks the budget before each request (`spent_today()` plus this call's own spend
        against `budget_usd`, else the connection's `daily_budget_usd`); a reply that does not
        validate is retried once with the error sent back, then LLMResponseError. Every
        HTTP call yields one usage row passed to `usage_sink`.
        """
        reply_type = reply_type or REPLY_TYPES.get(step)  # type: ignore[assignment]
        if reply_type is None:
            raise ConfigError(f"no reply type for LLM step {step!r}")
        model = self.model_for(step, model)
        if budget_usd is None and self._extras.get("daily_budget_usd") is not None:
            budget_usd = float(self._extras["daily_budget_usd"])
        spent_before = float(spent_today()) if spent_today is not None else 0.0
        tool = tool_name(reply_type)
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": self._max_tokens(step, max_tokens),
            "system": list(system_blocks) if not isinstance(system_blocks, str) else system_blocks,
        }
        if self.structured_mode == "tool":
            request["tools"] = [tool_definition(reply_type)]
            request["tool_choice"] = self._tool_choice(model, tool)
        else:
            request["output_config"] = {"format": {"type": "json_schema", "schema": json_schema(reply_type)}}
            user_message = user_message + JSON_ONLY_NOTE
        messages: list[dict[str, Any]] = [{"role": "user", "content": user_message}]
        rows: list[dict[str, Any]] = []

        for attempt in (1, 2):
            check_budget(spent_before + sum(r["usd"] for r in rows), budget_usd, step=step)
            reply, request_id, latency_ms = self._create(
                step, model, {**request, "messages": messages}, logical_date=logical_date, usage_sink=usage_sink)
            try:
                value = parse_reply(reply, reply_type, tool=tool, categories=categories, param_bounds=param_bounds)
                status = STATUS_OK
            except LLMResponseError as err:
                value, status, error = None, STATUS_INVALID, err
            row = build_usage_row(step=step, model=model, usage=reply.get("usage"), latency_ms=latency_ms,
                                  logical_date=logical_date, request_id=request_id, status=status,
                                  prices=self.prices)
            rows.append(row)
            self._emit(usage_sink, row)
            self.log.info(
                "LLM %s attempt %d: model %s, %d input + %d output tokens (cache write %d, read %d), "
                "$%.4f, %d ms, request %s, %s", step, attempt, model, row["input_tokens"],
                row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"],
                row["usd"], row["latency_ms"], request_id, status)
            if value is not None:
                return LLMResult(value, rows)
            if attempt == 2:
                raise LLMResponseError(
                    f"step {step!r}: reply of model {model!r} still invalid after one retry "
                    f"(request id {request_id}): {error}") from error
            self.log.warning("LLM %s reply invalid, retrying once with the error: %s", step, error)
            messages = messages + _feedback_turns(reply, str(error))
            if reply.get("stop_reason") == "max_tokens":
                # the answer did not fit: give the retry room to finish
                request["max_tokens"] = min(2 * request["max_tokens"], MAX_RETRY_TOKENS)
        raise AssertionError("unreachable")  # pragma: no cover

    def run_step(
        self,
        step: str,
        context: Mapping[str, Any],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        logical_date: date | datetime | str | None = None,
        usage_sink: UsageSink | None = None,
        spent_today: Callable[[], float] | None = None,
        budget_usd: float | None = None,
    ) -> LLMResult[Any]:
        """Build `step`'s prompt from `context` (see blofin_pipeline.llm.prompts) and run it.

        For `tune`, each candidate's `param_space` becomes the bounds the proposals must
        respect; `categories` in the context restrict a design's categories.
        """
        if step not in PROMPT_BUILDERS:
            raise ConfigError(f"unknown LLM step {step!r}")
        prompt = PROMPT_BUILDERS[step](context)
        param_bounds = None
        if step == "tune":
            param_bounds = {c["name"]: dict(c.get("param_space") or {}) for c in context.get("candidates") or []}
        return self.generate_structured(
            step, prompt.system, prompt.user, model=model, max_tokens=max_tokens,
            logical_date=logical_date, usage_sink=usage_sink, spent_today=spent_today,
            budget_usd=budget_usd, categories=context.get("categories"), param_bounds=param_bounds)

    def caller_for(
        self,
        ctx: RunContext,
        task: str | None = None,
        *,
        usage_sink: UsageSink | None = None,
        spent_today: Callable[[], float] | None = None,
        budget_usd: float | None = None,
    ) -> LLMCaller:
        """The `llm(step, system_blocks, user_message, reply_type)` callable for one run.

        Bound to the run's logical date and `llm_budget_usd`; usage rows go to
        `usage_sink` and the budget reads `spent_today`, by default both through the run's
        data database (`llm_usage` table, see `StoreUsageLedger`). Extra keywords of a call
        (`categories`, `param_bounds`, `model`, `max_tokens`) reach `generate_structured`.
        Raises what it does: LLMBudgetExceeded, LLMResponseError, LLMError.
        """
        if usage_sink is None or spent_today is None:
            ledger = StoreUsageLedger(ctx.db_url, ctx.run_date)
            usage_sink = usage_sink or ledger.record
            spent_today = spent_today or ledger.spent
        if budget_usd is None:
            budget_usd = float(ctx.config.llm_budget_usd)
        models = getattr(ctx.config, "llm_models", None) or None
        sink, spent, budget = usage_sink, spent_today, budget_usd

        def call(step: str, system_blocks: Sequence[Mapping[str, Any]] | str, user_message: str,
                 reply_type: type[BaseModel] | None = None, **kwargs: Any) -> LLMResult[Any]:
            kwargs.setdefault("model", (models or {}).get(step))
            return self.generate_structured(
                step, system_blocks, user_message, reply_type, logical_date=ctx.run_date,
                usage_sink=sink, spent_today=spent, budget_usd=budget, **kwargs)

        self.log.info("LLM caller for %s: run date %s, budget $%.2f", task or "research", ctx.run_date, budget)
        return call


class StoreUsageLedger:
    """`usage_sink` / `spent_today` on the data database's `llm_usage` table for one run date.

    Each row is upserted on (run_date, step, call_id), so a task retry that replays the
    same request id does not count it twice.
    """

    def __init__(self, db_url: str, run_date: str) -> None:
        self.db_url = db_url
        self.run_date = run_date

    def __repr__(self) -> str:  # the URL may hold a database password
        return f"StoreUsageLedger(run_date={self.run_date!r})"

    def record(self, row: dict[str, Any]) -> None:
        from blofin_pipeline.store import open_store, utc_now

        record = usage_record({**row, "logical_date": row.get("logical_date") or self.run_date},
                              created_at=utc_now())
        with open_store(self.db_url) as store:
            store.upsert("llm_usage", [record], key=LLM_USAGE_KEY)

    def spent(self) -> float:
        from blofin_pipeline.store import open_store

        with open_store(self.db_url) as store:
            rows = store.query_named("llm_spent_on_run_date", {"run_date": self.run_date})
            return float(rows[0]["usd"] or 0.0)


def _feedback_turns(reply: Mapping[str, Any], error: str) -> list[dict[str, Any]]:
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
