"""One exception hierarchy for the whole library.

Messages name the thing that failed (symbol, strategy, request, step), so a task log
line is enough to know what went wrong.
"""
from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error raised on purpose by blofin_pipeline."""


class ConfigError(PipelineError):
    """A setting or argument is missing or invalid."""


class StoreError(PipelineError):
    """The data database could not be read or written."""


# --- market data -----------------------------------------------------------------
class DataValidationError(PipelineError):
    """Candles failed validation (NaN, OHLC inconsistency, non-positive price, ...)."""


class ExchangeError(PipelineError):
    """The exchange answered with an error, a malformed body, or not at all."""


class RateLimitError(ExchangeError):
    """HTTP 429: the exchange rate-limited us."""


class ExchangeBanError(ExchangeError):
    """HTTP 403: the exchange's firewall banned this IP for a while."""


# --- strategies and backtests ----------------------------------------------------
class StrategyError(PipelineError):
    """A strategy failed to load or to produce valid signals; names the strategy."""


class StrategyRejected(StrategyError):
    """A strategy failed a safety, sandbox or lookahead check. `reasons` lists why."""

    def __init__(self, name: str, reasons: list[str]) -> None:
        self.name = name
        self.reasons = list(reasons)
        super().__init__(f"strategy {name!r} rejected: " + "; ".join(self.reasons))


class BacktestError(PipelineError):
    """Bad input to the backtester (misaligned positions, bad fee, ...)."""


# --- machine learning ------------------------------------------------------------
class ModelError(PipelineError):
    """An ML model or ensemble could not be trained, evaluated or loaded."""


# --- LLM -------------------------------------------------------------------------
class LLMError(PipelineError):
    """An LLM call failed for good (after the SDK's own retries).

    `request_id` is the API's id of the failed request, when it answered at all.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class LLMResponseError(LLMError):
    """The LLM's reply did not parse or did not fit the expected schema."""


class LLMBudgetExceeded(LLMError):
    """The day's LLM budget in USD is spent; LLM steps stop cleanly."""


# --- the strategy sandbox ----------------------------------------------------------
class SandboxUnavailable(Exception):
    """The kernel sandbox for untrusted strategy code cannot be set up on this machine
    (no Landlock, no libseccomp, the fork server would not start...).

    Deliberately not a PipelineError: it is the machine's fault, not the strategy's, so
    no handler that archives or skips a failing strategy may swallow it. The task fails
    (and Airflow retries it); untrusted code never runs unconfined instead.
    """


# --- batch mode ----------------------------------------------------------------------
class LLMBatchPending(Exception):
    """Batch mode: a step's LLM requests were collected instead of sent.

    The adapter submits `requests` (``{"custom_id", "params"}`` each, the Message Batches
    API's shape) as one batch, waits for it without holding a worker, and runs the step
    again with the results. Control flow, not a failure: deliberately neither an LLMError
    nor a PipelineError, so no handler of failed calls or failing strategies may catch it.
    """

    def __init__(self, step: str, requests: list[dict], *, batch_id: str | None = None) -> None:
        what = f"waiting for Message Batch {batch_id}" if batch_id else "collected for a Message Batch"
        super().__init__(f"step {step!r}: {len(requests)} LLM request(s) {what}")
        self.step = step
        self.requests = list(requests)
        #: The batch already submitted for these requests (a retried task picks it up again).
        self.batch_id = batch_id
