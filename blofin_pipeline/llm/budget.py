"""Daily USD budget and the usage rows written for every LLM call.

The hook builds one row per HTTP call (validation retries and failures included) and
hands it to a `usage_sink` callback; the caller persists it (the LLM usage table), so this
module writes no SQL.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

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
    "logical_date",
    "request_id",
    "status",
)


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


def _iso(logical_date: date | datetime | str | None) -> str | None:
    if logical_date is None or isinstance(logical_date, str):
        return logical_date
    return logical_date.isoformat()


def build_usage_row(
    *,
    step: str,
    model: str,
    usage: Any,
    latency_ms: float,
    logical_date: date | datetime | str | None,
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
        "logical_date": _iso(logical_date),
        "request_id": request_id,
        "status": status,
    }


#: Key of the `llm_usage` table (include/sql/migrations/001_initial.sql).
LLM_USAGE_KEY: tuple[str, ...] = ("run_date", "step", "call_id")


def usage_record(row: Mapping[str, Any], *, created_at: str) -> dict[str, Any]:
    """A usage row in the `llm_usage` table's columns.

    `call_id` is the API request id, or a fresh local id when the call never got one
    (connection failure, malformed body), so such rows are kept, not merged.
    """
    logical_date = row.get("logical_date")
    if not logical_date:
        raise ConfigError(f"usage row of step {row.get('step')!r} has no logical_date to store it under")
    return {
        "run_date": str(logical_date)[:10],
        "step": row["step"],
        "call_id": row.get("request_id") or f"local_{uuid.uuid4().hex}",
        "model": row["model"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cache_creation_tokens": row["cache_creation_tokens"],
        "cache_read_tokens": row["cache_read_tokens"],
        "usd": row["usd"],
        "latency_ms": row["latency_ms"],
        "status": row["status"],
        "created_at": created_at,
    }
