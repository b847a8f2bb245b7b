"""Per-call tool schemas that encode what a valid answer is, so a wrong one cannot be written.

The reply models of `llm.schemas` validate every answer; the tools offered to the model say
the same thing up front, in JSON Schema:

- design: at most `n` strategies; `category` one of the allowed categories; `name` a
  snake_case identifier (`pattern`) that is no Python keyword; `code` with the contract's
  example file as `examples` (a hint, not a template);
- tune: `strategy` one of the strategies to tune (`enum`), and for each of them its
  parameters with their `param_space` bounds (`integer`/`number` with `minimum` and
  `maximum`, or an `enum` of choices), all required: one `anyOf` branch per strategy;
- review: the `ReviewReply` fields, every list non-empty.

`day_tools` is the day's full set, offered identically by the design, tune and review
calls so their prompts share one cacheable prefix (tools come first in the cache order).
"""
from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.prefix import EXAMPLE_CODE
from blofin_pipeline.llm.schemas import (
    CATEGORIES,
    NAME_PATTERN,
    DesignReply,
    ReviewReply,
    TuneReply,
    json_schema,
    tool_definition,
)

_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}


def _text(description: str) -> dict[str, Any]:
    return {**_TEXT, "description": description}


def _object(properties: Mapping[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required),
            "additionalProperties": False}


def design_tool(categories: Sequence[str] = CATEGORIES, n: int = 3) -> dict[str, Any]:
    """The design step's tool: at most `n` strategies in the allowed categories."""
    if not categories or n < 1:
        raise ConfigError(f"design tool: need categories and n >= 1, got {list(categories)!r}, {n}")
    strategy = _object({
        "name": {"type": "string", "pattern": NAME_PATTERN, "not": {"enum": sorted(keyword.kwlist)},
                 "description": "unique snake_case name; the file's class attribute `name` is set to it"},
        "category": {"type": "string", "enum": list(categories),
                     "description": "the strategy's category; the file's class attribute `category` is set to it"},
        "rationale": _text("why this strategy should fill a gap of the portfolio, 2-5 sentences"),
        "code": {**_text("the complete Python file defining one Strategy subclass, per the contract"),
                 "examples": [EXAMPLE_CODE]},
    }, ["name", "category", "rationale", "code"])
    schema = _object({"strategies": {"type": "array", "minItems": 1, "maxItems": int(n), "items": strategy,
                                     "description": f"the new strategies, at most {n}"}}, ["strategies"])
    return tool_definition(DesignReply, schema)


def param_schema(space: Any) -> dict[str, Any]:
    """JSON Schema of one parameter from its `param_space` entry ((lo, hi) bounds or choices)."""
    values = list(space) if isinstance(space, (list, tuple)) else []
    if values and all(isinstance(v, bool) for v in values):
        return {"type": "boolean"}
    numeric = len(values) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        lo, hi = sorted(values)
        kind = "integer" if all(isinstance(v, int) for v in values) else "number"
        return {"type": kind, "minimum": lo, "maximum": hi}
    if values:
        return {"enum": values}
    raise ConfigError(f"param_space entry {space!r} is neither (low, high) bounds nor a list of choices")


def _proposal(name: str, space: Mapping[str, Any]) -> dict[str, Any]:
    params = _object({p: param_schema(s) for p, s in sorted(space.items())}, sorted(space))
    return _object({
        "strategy": {"type": "string", "enum": [name], "description": "the strategy being tuned"},
        "params": {**params, "description": "every parameter's new value, inside its param_space bounds"},
        "rationale": _text("why the change should help"),
        "diagnosis": _text("the failure pattern seen in the backtests"),
        "code": _text("only if the file itself must change: the complete new file (omit otherwise)"),
    }, ["strategy", "params", "rationale", "diagnosis"])


def tune_tool(targets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The tune step's tool: one proposal per strategy of `targets` ({name: param_space})."""
    tunable = {name: space for name, space in sorted(targets.items()) if space}
    if not tunable:
        raise ConfigError("tune tool: no strategy with a param_space to tune")
    schema = _object({"proposals": {
        "type": "array", "minItems": 1, "maxItems": len(tunable),
        "items": {"anyOf": [_proposal(name, space) for name, space in tunable.items()]},
        "description": "at most one proposal per strategy to tune: " + ", ".join(tunable)}}, ["proposals"])
    return tool_definition(TuneReply, schema)


def review_tool() -> dict[str, Any]:
    """The review step's tool (every list with at least one point)."""
    schema = json_schema(ReviewReply)
    for key in ("working", "not_working", "risks", "recommendations"):
        schema["properties"][key]["minItems"] = 1
        schema["properties"][key]["items"] = dict(_TEXT)
    schema["properties"]["summary"].update(_TEXT)
    schema["additionalProperties"] = False
    return tool_definition(ReviewReply, schema)


def reply_tool(reply_type: type[BaseModel], *, categories: Sequence[str] | None = None,
               param_bounds: Mapping[str, Mapping[str, Any]] | None = None, n: int | None = None
               ) -> dict[str, Any]:
    """The tool of one call: the constrained schema of its reply type (generic for others)."""
    if reply_type is DesignReply:
        return design_tool(categories or CATEGORIES, n or 10)
    if reply_type is TuneReply and param_bounds:
        return tune_tool(param_bounds)
    if reply_type is ReviewReply:
        return review_tool()
    return tool_definition(reply_type)


def day_tools(*, categories: Sequence[str], n_designs: int, tune_targets: Mapping[str, Mapping[str, Any]]
              ) -> list[dict[str, Any]]:
    """The day's tools, in a fixed order: design (when n_designs > 0), tune (when there are
    targets), review."""
    tools = []
    if n_designs > 0:
        tools.append(design_tool(categories, n_designs))
    if any(tune_targets.values()):
        tools.append(tune_tool(tune_targets))
    tools.append(review_tool())
    return tools
