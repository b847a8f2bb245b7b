"""The LLM usage ledger: one `llm_usage` row per attempt, keyed by a local id, and the day's spend.

`UsageLog` is the ledger the structured-call policy of `blofin_pipeline.llm` writes to,
bound to one run date and to the step's open Store:

- `reserve` runs before a request is sent. In one transaction (SQLite: BEGIN IMMEDIATE,
  PostgreSQL: an advisory lock on the run date) it reads the day's spend, lets the caller's
  `check` refuse (the budget rule lives in `llm.budget`), and inserts a row with status
  `reserved` that holds the call's worst-case cost. Two workers reserving at once are
  serialised, so they can never both spend the last of the budget.
- `settle` writes the attempt's outcome (ok, invalid or error), tokens and USD into its row.

The key is a local id made here, never the server's `request-id` (kept as a column): a
server, proxy or test double that repeats a request id cannot merge two attempts. The day's
spend counts settled rows at their price and open reservations at their worst case; a
worker that dies mid-call leaves its reservation counted, which errs on the safe side.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from blofin_pipeline.store.connection import Store, utc_now

#: Columns a settled attempt writes (besides its id and the time).
SETTLED_FIELDS: tuple[str, ...] = (
    "status", "request_id", "input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens",
    "http_retries", "usd", "latency_ms", "error",
)


def new_attempt_id() -> str:
    """A fresh local attempt id (also the batch request's custom_id)."""
    return f"att_{uuid.uuid4().hex}"


def spent_usd(store: Store, run_date: str) -> float:
    """USD of the run date's attempts: settled ones at their price, open ones at their reservation."""
    rows = store.query_named("usage_spent_on_run_date", {"run_date": run_date[:10]})
    return float(rows[0]["usd"] or 0.0)


def reserve_attempt(store: Store, run_date: str, *, step: str, attempt: int, model: str, mode: str,
                    reserved_usd: float, check: Callable[[float], None]) -> str:
    """Insert a `reserved` row for a new attempt, after `check(spent)` accepted the day's spend.

    `check` raises to refuse (then nothing is written). Returns the attempt id.
    """
    attempt_id = new_attempt_id()
    day = run_date[:10]
    with store.transaction():
        if store.dialect == "postgresql":
            store.query_named("usage_lock_run_date", {"run_date": day})
        check(spent_usd(store, day))
        store.execute_named("usage_reserve", {
            "attempt_id": attempt_id, "run_date": day, "step": step, "attempt": int(attempt), "model": model,
            "mode": mode, "reserved_usd": float(reserved_usd), "created_at": utc_now("microseconds")})
    return attempt_id


def settle_attempt(store: Store, attempt_id: str, row: Mapping[str, Any]) -> None:
    """Write an attempt's outcome (`blofin_pipeline.llm.budget.build_usage_row`) into its row."""
    values = {field: row.get(field) for field in SETTLED_FIELDS}
    values["http_retries"] = int(values["http_retries"] or 0)
    store.execute_named("usage_settle", {**values, "attempt_id": attempt_id, "settled_at": utc_now()})


def attempts_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Every attempt of the run date, oldest first."""
    return store.query_named("usage_attempts_on_date", {"run_date": run_date[:10]})


def usage_by_step_model(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's attempts by step, model, mode and status: calls, tokens, USD, mean latency."""
    return store.query_named("usage_by_step_model", {"run_date": run_date[:10]})


class UsageLog:
    """The usage ledger of one run date on an open Store (`blofin_pipeline.llm.budget.UsageLedger`)."""

    def __init__(self, store: Store, run_date: str) -> None:
        self.store = store
        self.run_date = run_date[:10]

    def __repr__(self) -> str:  # the Store's URL may hold a database password
        return f"UsageLog(run_date={self.run_date!r})"

    def reserve(self, *, step: str, attempt: int, model: str, mode: str, reserved_usd: float,
                check: Callable[[float], None]) -> str:
        return reserve_attempt(self.store, self.run_date, step=step, attempt=attempt, model=model, mode=mode,
                               reserved_usd=reserved_usd, check=check)

    def settle(self, attempt_id: str, row: Mapping[str, Any]) -> None:
        settle_attempt(self.store, attempt_id, row)

    def spent_usd(self) -> float:
        return spent_usd(self.store, self.run_date)

    def open_batch_attempts(self, step: str) -> list[dict[str, Any]]:
        """This step's batch attempts still waiting for their answer (`request_id`: the batch id)."""
        return self.store.query_named("usage_open_batch", {"run_date": self.run_date, "step": step})

    def mark_batch(self, attempt_ids: list[str], batch_id: str) -> None:
        """Record the batch the reserved attempts were submitted in."""
        with self.store.transaction():
            for attempt_id in attempt_ids:
                self.store.execute_named("usage_mark_batch", {"attempt_id": attempt_id, "batch_id": batch_id})
