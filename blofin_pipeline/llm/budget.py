"""Daily USD budget, the worst-case cost of a call, and the usage rows of every attempt.

Before an attempt is sent, the structured-call policy (`llm.policy`) reserves its worst-case
cost in a `UsageLedger`: `max_tokens` at the output price plus the request's input tokens
(estimated on the safe side) at the dearest input rate. The ledger runs `budget_check`
inside the transaction that inserts the reservation, so parallel tasks cannot both spend
the last of the budget. When the answer comes (or the call fails) the attempt is settled
with its real tokens and USD (`build_usage_row`). The data database's ledger is
`blofin_pipeline.store.usage.UsageLog`; this module writes no SQL.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from blofin_pipeline.exceptions import ConfigError, LLMBudgetExceeded
from blofin_pipeline.llm.models import MTOK, ModelPrice, cost_usd, price_for

#: Attempt status values: waiting for its answer / the reply validated / did not validate /
#: the call failed for good.
STATUS_RESERVED = "reserved"
STATUS_OK = "ok"
STATUS_INVALID = "invalid"
STATUS_ERROR = "error"
SETTLED_STATUSES = (STATUS_OK, STATUS_INVALID, STATUS_ERROR)

#: How an attempt was sent: one request, one streamed request, a Message Batches request.
MODES = ("direct", "stream", "batch")

#: Characters per token of the input estimate. Real tokenizers give about 3.5-4 for English
#: and code; 2.5 keeps the estimate above the real count, as a reservation must.
CHARS_PER_TOKEN = 2.5

USAGE_FIELDS: tuple[str, ...] = (
    "step", "model", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
    "http_retries", "usd", "latency_ms", "request_id", "status", "error",
)


class UsageLedger(Protocol):
    """Where the attempts of one run date are reserved and settled, and what they add up to."""

    def reserve(self, *, step: str, attempt: int, model: str, mode: str, reserved_usd: float,
                check: Callable[[float], None]) -> str:
        """Hold `reserved_usd` for a new attempt after `check(spent_today)` accepted; return its id."""

    def settle(self, attempt_id: str, row: Mapping[str, Any]) -> None:
        """Write an attempt's outcome (`build_usage_row`)."""

    def spent_usd(self) -> float:
        """USD of the run date: settled attempts at their price, open ones at their reservation."""

    def open_batch_attempts(self, step: str) -> list[dict[str, Any]]:
        """The step's batch attempts still waiting for an answer (`attempt_id`, `request_id` = batch id)."""


def _valid_budget(budget_usd: float | None) -> float | None:
    if budget_usd is None:
        return None
    if isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float)) or math.isnan(budget_usd) \
            or budget_usd < 0:
        raise ConfigError(f"LLM budget must be a non-negative number of USD, got {budget_usd!r}")
    return float(budget_usd)


def check_budget(spent_usd_today: float, budget_usd: float | None, *, step: str | None = None,
                 reserved_usd: float = 0.0) -> None:
    """Raise LLMBudgetExceeded when today's spend plus this call's worst case would pass the budget.

    None: no budget. With no reservation, a spend that has reached the budget stops too.
    """
    budget = _valid_budget(budget_usd)
    if budget is None:
        return
    if spent_usd_today + reserved_usd > budget or spent_usd_today >= budget:
        where = f" before step {step!r}" if step else ""
        raise LLMBudgetExceeded(
            f"daily LLM budget reached{where}: ${spent_usd_today:.4f} spent or reserved today, "
            f"+ ${reserved_usd:.4f} worst case of this call > ${budget:.2f} budget; "
            "LLM steps stop until tomorrow or a higher budget"
        )


def budget_check(budget_usd: float | None, reserved_usd: float, *, step: str) -> Callable[[float], None]:
    """The `check` a ledger runs inside the reservation's transaction."""
    _valid_budget(budget_usd)

    def check(spent_usd_today: float) -> None:
        check_budget(spent_usd_today, budget_usd, step=step, reserved_usd=reserved_usd)

    return check


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """Input tokens of a request, estimated on the high side from its tools, system and messages."""
    parts = [request.get(key) for key in ("tools", "system", "messages", "output_config")]
    chars = sum(len(json.dumps(p, ensure_ascii=False, sort_keys=True)) for p in parts if p)
    return int(math.ceil(chars / CHARS_PER_TOKEN))


def worst_case_usd(request: Mapping[str, Any], prices: Mapping[str, ModelPrice] | None = None, *,
                   price_factor: float = 1.0) -> float:
    """Most a request can cost: `max_tokens` output plus every input token at the dearest input rate
    (a 1-hour cache write), times `price_factor` (0.5 for the Message Batches API)."""
    price = price_for(str(request["model"]), prices)
    input_tokens = estimate_input_tokens(request)
    if price.long_prompt is not None and price.long_prompt_above is not None \
            and input_tokens > price.long_prompt_above:
        price = price.long_prompt
    dearest_input = max(price.input, price.cache_write_5m, price.cache_write_1h)
    total = input_tokens * dearest_input + int(request["max_tokens"]) * price.output
    return round(total / MTOK * price_factor, 8)


def usage_to_dict(usage: Any) -> dict[str, Any]:
    """Plain dict of an API `usage` object (dict or SDK model)."""
    if usage is None:
        return {}
    if isinstance(usage, Mapping):
        return dict(usage)
    return usage.model_dump(mode="json", exclude_none=True)


def build_usage_row(
    *,
    step: str,
    model: str,
    usage: Any,
    latency_ms: float,
    request_id: str | None,
    status: str,
    prices: Mapping[str, ModelPrice] | None = None,
    price_factor: float = 1.0,
    cache_factor: float | None = None,
    http_retries: int = 0,
    error: str | None = None,
) -> dict[str, Any]:
    """One settled attempt of the LLM usage table; `usd` priced from the token counts
    (`price_factor`/`cache_factor`: see `llm.models.cost_usd`)."""
    if status not in SETTLED_STATUSES:
        raise ConfigError(f"usage row status {status!r} is not one of {', '.join(SETTLED_STATUSES)}")
    tokens = usage_to_dict(usage)
    return {
        "step": step,
        "model": model,
        "input_tokens": int(tokens.get("input_tokens") or 0),
        "output_tokens": int(tokens.get("output_tokens") or 0),
        "cache_creation_tokens": int(tokens.get("cache_creation_input_tokens") or 0),
        "cache_read_tokens": int(tokens.get("cache_read_input_tokens") or 0),
        "http_retries": int(http_retries or 0),
        "usd": round(cost_usd(model, tokens, prices, factor=price_factor, cache_factor=cache_factor), 8),
        "latency_ms": int(round(latency_ms)),
        "request_id": request_id,
        "status": status,
        "error": error[:500] if error else None,
    }
