"""Daily USD budget and the usage rows written for every LLM call.

The structured-call policy (`llm.policy`) builds one row per HTTP call (validation retries
and failures included) and hands it to a `UsageLedger`, which persists it and sums the
day's spend (the data database's ledger is `blofin_pipeline.store.usage.UsageLog`), so
this module writes no SQL.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from blofin_pipeline.exceptions import ConfigError, LLMBudgetExceeded
from blofin_pipeline.llm.models import ModelPrice, cost_usd

#: Row status values: the reply validated / did not validate / the call failed for good.
STATUS_OK = "ok"
STATUS_INVALID = "invalid"
STATUS_ERROR = "error"

USAGE_FIELDS: tuple[str, ...] = (
    "step",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "usd",
    "latency_ms",
    "request_id",
    "status",
)


class UsageLedger(Protocol):
    """Where the usage rows of one run date go, and what they add up to."""

    def record(self, row: Mapping[str, Any]) -> None:
        """Persist one usage row (`build_usage_row`)."""

    def spent_usd(self) -> float:
        """USD spent on the ledger's run date so far, this call's earlier attempts included."""


def check_budget(spent_usd_today: float, budget_usd: float | None, *, step: str | None = None) -> None:
    """Raise LLMBudgetExceeded when today's spend has reached the budget (None: no budget)."""
    if budget_usd is None:
        return
    if not isinstance(budget_usd, (int, float)) or math.isnan(budget_usd) or budget_usd < 0:
        raise ConfigError(f"LLM budget must be a non-negative number of USD, got {budget_usd!r}")
    if spent_usd_today >= budget_usd:
        where = f" before step {step!r}" if step else ""
        raise LLMBudgetExceeded(
            f"daily LLM budget spent{where}: ${spent_usd_today:.4f} of ${budget_usd:.2f} used today; "
            "LLM steps stop until tomorrow or a higher budget"
        )


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
) -> dict[str, Any]:
    """One row of the LLM usage table; `usd` priced from the token counts."""
    if status not in (STATUS_OK, STATUS_INVALID, STATUS_ERROR):
        raise ConfigError(f"usage row status {status!r} is not one of ok, invalid, error")
    tokens = usage_to_dict(usage)
    return {
        "step": step,
        "model": model,
        "input_tokens": int(tokens.get("input_tokens") or 0),
        "output_tokens": int(tokens.get("output_tokens") or 0),
        "cache_creation_tokens": int(tokens.get("cache_creation_input_tokens") or 0),
        "cache_read_tokens": int(tokens.get("cache_read_input_tokens") or 0),
        "usd": round(cost_usd(model, tokens, prices), 8),
        "latency_ms": int(round(latency_ms)),
        "request_id": request_id,
        "status": status,
    }
