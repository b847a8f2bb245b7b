"""Doubles of the LLM boundary: a scripted `LLMCaller` and an in-memory `UsageLedger`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from blofin_pipeline.llm.parsing import validate_reply
from blofin_pipeline.llm.prompts import Prompt

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
    """A `UsageLedger` in a list; `spent_before` is what the day had spent before."""

    spent_before: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def record(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    def spent_usd(self) -> float:
        return self.spent_before + sum(row["usd"] for row in self.rows)
