"""Batch mode: a step's LLM request goes through the Message Batches API at half price.

A batched step runs twice. First (collect phase, `BatchMode()`), its caller reserves the
request's worst case at the batch price and raises `LLMBatchPending` with the request in
the API's shape (``{"custom_id": <attempt id>, "params": <messages.create body>}``) instead
of sending it. The adapter submits the batch and waits without holding a worker (in
Airflow a trigger polls it; `wait_for_batch` does it in-process for the CLI and the tests),
then runs the step again (answer phase, `BatchMode(answers)`): the caller takes its result
from the batch, prices it at the batch rate and settles the reservation. A result that
failed, expired, was canceled or never came is settled as an error (batch failures are
not billed) and the call falls back to a direct request; an invalid answer gets the one
validation retry, directly.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import BatchTransport
    from blofin_pipeline.llm.settings import BatchSettings

logger = logging.getLogger(__name__)

#: `processing_status` of a batch that will change no more.
ENDED = "ended"


@dataclass(frozen=True)
class BatchAnswers:
    """What came back from a step's batch: results by custom id, or why there are none."""

    batch_id: str | None
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    failure: str | None = None


@dataclass(frozen=True)
class BatchMode:
    """A caller's batch phase: collect (`answers` None) or answer."""

    answers: BatchAnswers | None = None

    @property
    def collecting(self) -> bool:
        return self.answers is None


def result_message(result: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the message, None) of a succeeded batch result, else (None, why it has none)."""
    if result is None:
        return None, "no result for this request in the batch"
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), Mapping):
        return dict(result["message"]), None
    if kind == "errored":
        error = (result.get("error") or {}).get("error") or result.get("error") or {}
        return None, f"batch request errored ({error.get('type', 'error')}: {error.get('message', '')})"
    return None, f"batch request {kind or 'unknown'}"


def wait_for_batch(batch_id: str, transport: BatchTransport, settings: BatchSettings, *,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
                   ) -> BatchAnswers:
    """Poll a submitted batch until it ends or `settings.timeout_s` passes (then cancel it),
    and return its answers.

    The in-process wait of the CLI and the tests; Airflow defers to a trigger instead.
    """
    deadline = clock() + settings.timeout_s
    while transport.batch_status(batch_id) != ENDED:
        if clock() > deadline:
            return cancelled(transport, batch_id, f"batch {batch_id} did not end within {settings.timeout_s:g} s")
        sleep(settings.poll_s)
    return BatchAnswers(batch_id, transport.batch_results(batch_id))


def cancelled(transport: BatchTransport, batch_id: str, why: str) -> BatchAnswers:
    """Cancel a batch that took too long (best effort) and say why the step has no answers."""
    try:
        transport.cancel_batch(batch_id)
    except Exception as err:  # the fallback to direct calls must go on; the batch expires by itself
        logger.warning("could not cancel batch %s: %s", batch_id, err)
    logger.warning("%s: canceled, falling back to direct calls", why)
    return BatchAnswers(batch_id, {}, failure=f"{why}; canceled")
