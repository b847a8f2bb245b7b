"""Doubles of the LLM boundary: a scripted `LLMCaller`, an in-memory `UsageLedger`, and an
`LLMConnection` on the bare SDK (the hook without Airflow)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from blofin_pipeline.llm.parsing import validate_reply
from blofin_pipeline.llm.prompts import Prompt
from blofin_pipeline.llm.settings import LLMSettings

#: Replies of the design step for the Messages API tests: valid, and with a name that breaks the schema.
CODE = (
    "from blofin_pipeline.strategies import Strategy\n\n\n"
    "class VolBreakout(Strategy):\n    name = 'vol_breakout'\n"
)
VALID_DESIGN = {"strategies": [{"name": "vol_breakout", "category": "breakout",
                                "rationale": "Covers the breakout gap on ETH.", "code": CODE}]}
BROKEN_DESIGN = {"strategies": [{**VALID_DESIGN["strategies"][0], "name": "Vol Breakout"}]}


@dataclass
class Call:
    step: str
    prompt: Prompt
    reply_type: type[BaseModel]
    categories: Sequence[str] | None
    param_bounds: Mapping[str, Mapping[str, Any]] | None


@dataclass
class ScriptedCaller:
    """An `LLMCaller` that answers each call with the next scripted reply.

    A reply is a `reply_type` instance (returned as is) or a payload dict, validated the
    way the real caller validates (with the call's categories and parameter bounds), so a
    payload that breaks them raises LLMResponseError.
    """

    replies: list[Any]
    calls: list[Call] = field(default_factory=list)

    def __call__(self, step: str, prompt: Prompt, reply_type: type[BaseModel], *,
                 categories: Sequence[str] | None = None,
                 param_bounds: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        self.calls.append(Call(step, prompt, reply_type, categories, param_bounds))
        reply = self.replies.pop(0)
        if isinstance(reply, reply_type):
            return reply
        return validate_reply(reply_type, reply, categories=categories, param_bounds=param_bounds)


@dataclass
class MemoryLedger:
    """A `UsageLedger` in a dict; `spent_before` is what the day had spent before."""

    spent_before: float = 0.0
    attempts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reserve(self, *, step: str, attempt: int, model: str, mode: str, reserved_usd: float,
                check: Callable[[float], None]) -> str:
        check(self.spent_usd())
        attempt_id = f"att_{len(self.attempts) + 1:04d}"
        self.attempts[attempt_id] = {"attempt_id": attempt_id, "step": step, "attempt": attempt, "model": model,
                                     "mode": mode, "status": "reserved", "reserved_usd": reserved_usd, "usd": 0.0,
                                     "request_id": None}
        return attempt_id

    def settle(self, attempt_id: str, row: Mapping[str, Any]) -> None:
        self.attempts[attempt_id].update(row)

    def spent_usd(self) -> float:
        return self.spent_before + sum(a["reserved_usd"] if a["status"] == "reserved" else a["usd"]
                                       for a in self.attempts.values())

    def open_batch_attempts(self, step: str) -> list[dict[str, Any]]:
        return [dict(a) for a in self.attempts.values()
                if a["step"] == step and a["mode"] == "batch" and a["status"] == "reserved"]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The settled attempts, in order."""
        return [a for a in self.attempts.values() if a["status"] != "reserved"]


class SDKConnection:
    """An `LLMConnection` without Airflow: the anthropic SDK client against a base URL.

    What the hook does, on the bare SDK: `create_message` (streamed with `stream=True`, the
    SDK's retries reported as `http_retries`), the Message Batches transport, the settings.
    """

    def __init__(self, base_url: str, settings: LLMSettings | None = None, *, api_key: str = "sk-test-key",
                 max_retries: int = 0, timeout: float = 20.0) -> None:
        import anthropic

        self.settings = settings or LLMSettings()
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=max_retries,
                                          timeout=timeout)

    def create_message(self, *, stream: bool = False, **request: Any) -> Any:
        import anthropic

        from blofin_pipeline.exceptions import LLMError

        try:
            raw = self.client.messages.with_raw_response.create(**request, **({"stream": True} if stream else {}))
            if stream:
                from anthropic.lib.streaming import MessageStream

                with MessageStream(raw.parse(), anthropic.NOT_GIVEN) as events:
                    message = events.get_final_message()
                message._request_id = raw.request_id
            else:
                message = raw.parse()
            message.http_retries = raw.retries_taken
            return message
        except anthropic.APIStatusError as err:
            raise LLMError(f"HTTP {err.status_code}; request id {err.request_id}", request_id=err.request_id) from err
        except anthropic.APIConnectionError as err:
            raise LLMError(f"could not reach the API ({type(err).__name__})") from err

    def submit_batch(self, requests: list[dict[str, Any]]) -> str:
        return self.client.messages.batches.create(requests=requests).id

    def batch_status(self, batch_id: str) -> str:
        return self.client.messages.batches.retrieve(batch_id).processing_status

    def batch_results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        return {r.custom_id: r.result.model_dump(mode="json", exclude_none=True)
                for r in self.client.messages.batches.results(batch_id)}

    def cancel_batch(self, batch_id: str) -> Any:
        return self.client.messages.batches.cancel(batch_id)
