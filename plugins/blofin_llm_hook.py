"""Airflow hook for the pipeline's Claude calls: the Anthropic provider's hook plus settings.

`BlofinLLMHook` transports: it reads the connection, builds the SDK client lazily, sends
one Messages API request per `create_message` (streamed with `messages.stream` when asked,
so a long answer cannot hit the HTTP timeout), submits and reads Message Batches
(`submit_batch`, `batch_status`, `batch_results`, `cancel_batch`, on the provider hook's
batch calls) and turns the SDK's failures into the library's `LLMError` (with the request
id, never the API key). The structured-call policy (request building, validation retry,
budget, usage ledger) is `blofin_pipeline.llm.policy`; the steps build it from this hook
(`create_message` and `settings`).

Connection `anthropic_default` (conn type `anthropic`): API key in the password, optional
base URL in the host. Extras, all optional:
- `models`, `max_tokens`, `prices`, `structured_output`, `tool_choice`: see
  `blofin_pipeline.llm.settings`;
- `anthropic_client_kwargs`: forwarded to the SDK client (e.g. `{"max_retries": 2,
  "timeout": 120}`); the SDK retries 408/409/429/5xx itself, honouring `retry-after`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import anthropic
from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
from anthropic.lib.streaming import MessageStream

from blofin_pipeline.exceptions import LLMError, LLMResponseError
from blofin_pipeline.llm.settings import LLMSettings

#: Client options used unless the connection's `anthropic_client_kwargs` sets them: the SDK
#: default timeout is 10 minutes, too long for a task that has a pool slot.
DEFAULT_CLIENT_OPTIONS: Mapping[str, Any] = {"timeout": 300.0, "max_retries": 2}


class BlofinLLMHook(AnthropicHook):
    """Claude for the research steps: the client, one message call, the connection's settings.

    The client is built on first use (`conn`, a cached property of the provider hook).

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

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return dict(self._connection.extra_dejson or {})

    @cached_property
    def settings(self) -> LLMSettings:
        """Models per step, max tokens, prices and reply mode from the connection's extras."""
        return LLMSettings.from_extras(self._extras, source=f"connection {self.conn_id!r}")

    def get_conn(self) -> anthropic.Anthropic:
        """The SDK client from the connection, with this hook's default timeout and retries."""
        client = super().get_conn()
        configured = self._extras.get("anthropic_client_kwargs") or {}
        defaults = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k not in configured}
        return client.with_options(**defaults) if defaults else client

    def _redact(self, text: str) -> str:
        """Defence in depth: never let the API key travel in a message."""
        key = self._connection.password
        return text.replace(key, "***") if key else text

    def test_connection(self) -> tuple[bool, str]:
        """List the models with the configured key (no tokens spent)."""
        ok, message = super().test_connection()
        return ok, self._redact(message)

    def create_message(self, messages: list[dict[str, Any]], model: str | None = None, max_tokens: int = 1024,
                       system: Any = None, stream: bool = False, **kwargs: Any) -> anthropic.types.Message:
        """One Messages API request (the SDK's retries included); failures raise LLMError.

        `stream=True` streams it and returns the final message. The message carries
        `http_retries`, the SDK's retries (429, 529, ...) before this answer. HTTP errors
        give LLMError with the status, error type and request id; a timeout or an
        unreachable API give LLMError; a malformed reply body gives LLMResponseError.
        """
        model = self._resolve_model(model)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages, **kwargs}
        if system is not None:
            params["system"] = system
        try:
            return self._streamed(params) if stream else self._created(params)
        except anthropic.APIStatusError as err:
            error = err.body.get("error") if isinstance(err.body, dict) else None
            error_type = error.get("type") if isinstance(error, dict) else None
            raise LLMError(self._redact(
                f"Anthropic API answered HTTP {err.status_code} ({error_type or 'error'}) for model {model!r} "
                f"after the SDK's retries; request id {err.request_id}"), request_id=err.request_id) from err
        except anthropic.APITimeoutError as err:
            raise LLMError(f"request to model {model!r} timed out after the SDK's retries") from err
        except anthropic.APIConnectionError as err:
            raise LLMError(f"could not reach the Anthropic API for model {model!r} "
                           f"({type(err.__cause__ or err).__name__})") from err
        except (json.JSONDecodeError, anthropic.APIResponseValidationError) as err:
            raise LLMResponseError(f"the API's reply body for model {model!r} is malformed: "
                                   f"{type(err).__name__}") from err

    def _created(self, params: dict[str, Any]) -> anthropic.types.Message:
        raw = self.conn.messages.with_raw_response.create(**params)
        message = raw.parse()
        message.http_retries = raw.retries_taken  # an extra field of the SDK model: it allows them
        return message

    def _streamed(self, params: dict[str, Any]) -> anthropic.types.Message:
        # The raw response keeps the SDK's retry count; the stream helper accumulates the events.
        raw = self.conn.messages.with_raw_response.create(**params, stream=True)
        with MessageStream(raw.parse(), anthropic.NOT_GIVEN) as events:
            message = events.get_final_message()
        message._request_id = raw.request_id
        message.http_retries = raw.retries_taken
        return message

    # --- Message Batches (the library's BatchTransport) --------------------------------
    def submit_batch(self, requests: list[dict[str, Any]]) -> str:
        """Create a Message Batch of ``{"custom_id", "params"}`` requests; its id."""
        try:
            return self.create_batch(requests).id
        except anthropic.APIError as err:
            raise LLMError(self._redact(f"could not create a Message Batch: {type(err).__name__}: {err}"),
                           request_id=getattr(err, "request_id", None)) from err

    def batch_status(self, batch_id: str) -> str:
        return str(self.get_batch(batch_id).processing_status)

    def batch_results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """Each request's result by custom id, in the API's wire shape."""
        return {item.custom_id: item.result.model_dump(mode="json", exclude_none=True)
                for item in self.stream_batch_results(batch_id)}
