"""Structured replies the research steps ask Claude for, as pydantic models with JSON schemas.

Validation goes beyond types: strategy names are snake_case identifiers, categories come
from an allowed set, code is non-empty, and tuned parameters stay inside the strategy's
`param_space` when the caller gives those bounds (through the validation context, see
`validate_reply`).
"""
from __future__ import annotations

import copy
import keyword
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# The strategy contract's own list, so a designed strategy never claims a category the
# loader would reject.
from blofin_pipeline.strategies.base import CATEGORIES

#: A strategy name: snake_case, starts with a letter, at most 64 characters (and no keyword).
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)

_MODEL_CONFIG = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.fullmatch(value) or keyword.iskeyword(value):
        raise ValueError(f"{what} {value!r} is not a snake_case identifier (lowercase letters, digits, _; "
                         "starts with a letter; at most 64 characters)")
    return value


def _check_text(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


class DesignedStrategy(BaseModel):
    """One new strategy: a complete Python file following the strategy contract."""

    model_config = _MODEL_CONFIG

    name: str = Field(description="unique snake_case name, equal to the class attribute `name` in the code")
    category: str = Field(description="one of: " + ", ".join(CATEGORIES))
    rationale: str = Field(description="why this strategy should fill a gap of the portfolio, 2-5 sentences")
    code: str = Field(description="the complete Python file defining one Strategy subclass")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "strategy name")

    @field_validator("category")
    @classmethod
    def _category(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("categories") or CATEGORIES
        if value not in allowed:
            raise ValueError(f"category {value!r} is not one of {', '.join(allowed)}")
        return value

    @field_validator("rationale")
    @classmethod
    def _rationale(cls, value: str) -> str:
        return _check_text(value, "rationale")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return _check_text(value, "code")


class DesignReply(BaseModel):
    """Reply of the design step."""

    model_config = _MODEL_CONFIG

    strategies: list[DesignedStrategy] = Field(min_length=1, description="the new strategies")

    @model_validator(mode="after")
    def _unique_names(self) -> DesignReply:
        names = [s.name for s in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategy names must be unique, repeated: {', '.join(duplicates)}")
        return self


ParamValue = bool | int | float | str


class TuneProposal(BaseModel):
    """A parameter change (and optionally new code) for one existing strategy."""

    model_config = _MODEL_CONFIG

    strategy: str = Field(description="name of the strategy being tuned")
    params: dict[str, ParamValue] = Field(description="new parameter values, each inside param_space")
    code: str | None = Field(default=None, description="optional complete new Python file, only if code must change")
    rationale: str = Field(description="why the change should help")
    diagnosis: str = Field(description="the failure pattern seen in the backtests")

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        return _check_name(value, "strategy name")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value, "code")

    @field_validator("rationale")
    @classmethod
    def _rationale(cls, value: str) -> str:
        return _check_text(value, "rationale")

    @field_validator("diagnosis")
    @classmethod
    def _diagnosis(cls, value: str) -> str:
        return _check_text(value, "diagnosis")

    @field_validator("params")
    @classmethod
    def _within_bounds(cls, value: dict[str, ParamValue], info: ValidationInfo) -> dict[str, ParamValue]:
        bounds_by_strategy: Mapping[str, Mapping[str, Any]] | None = (info.context or {}).get("param_bounds")
        strategy = info.data.get("strategy")
        if bounds_by_strategy is None or strategy is None:
            return value
        if strategy not in bounds_by_strategy:
            raise ValueError(f"strategy {strategy!r} is not one of the strategies to tune: "
                             f"{', '.join(sorted(bounds_by_strategy)) or '(none)'}")
        check_params_in_bounds(strategy, value, bounds_by_strategy[strategy])
        return value


def check_params_in_bounds(strategy: str, params: Mapping[str, Any], bounds: Mapping[str, Any]) -> None:
    """Raise ValueError naming the parameter when `params` leaves `bounds` ({name: (lo, hi)})."""
    problems: list[str] = []
    for param, value in params.items():
        if param not in bounds:
            problems.append(f"parameter {param!r} is not in param_space ({', '.join(sorted(bounds))})")
            continue
        space = bounds[param]
        if isinstance(space, (list, tuple)) and len(space) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in space
        ):
            lo, hi = space
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                problems.append(f"parameter {param!r} must be a number in [{lo}, {hi}], got {value!r}")
            elif not lo <= value <= hi:
                problems.append(f"parameter {param!r}={value!r} is outside [{lo}, {hi}]")
            elif isinstance(lo, int) and isinstance(hi, int) and not float(value).is_integer():
                problems.append(f"parameter {param!r}={value!r} must be an integer in [{lo}, {hi}]")
        elif isinstance(space, (list, tuple)) and value not in space:
            problems.append(f"parameter {param!r}={value!r} is not one of {list(space)!r}")
    if problems:
        raise ValueError(f"strategy {strategy!r}: " + "; ".join(problems))


class TuneReply(BaseModel):
    """Reply of the tune step."""

    model_config = _MODEL_CONFIG

    proposals: list[TuneProposal] = Field(min_length=1, description="one proposal per strategy to tune")


class ReviewReply(BaseModel):
    """Reply of the AI review step."""

    model_config = _MODEL_CONFIG

    summary: str = Field(description="strategic analysis of the day in one paragraph")
    working: list[str] = Field(description="what is working, one point per item")
    not_working: list[str] = Field(description="what is not working, one point per item")
    risks: list[str] = Field(description="risks to watch")
    recommendations: list[str] = Field(description="concrete recommendations for the next runs")

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        return _check_text(value, "summary")


TOOL_NAMES: Mapping[type[BaseModel], str] = {
    DesignReply: "submit_strategies",
    TuneReply: "submit_tuning",
    ReviewReply: "submit_review",
}


def _inline_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            return _inline_refs(copy.deepcopy(target), defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$defs", "title")}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def json_schema(reply_type: type[BaseModel]) -> dict[str, Any]:
    """Self-contained JSON schema of a reply type (no $ref, no titles)."""
    raw = reply_type.model_json_schema()
    return _inline_refs(raw, raw.get("$defs", {}))


def tool_name(reply_type: type[BaseModel]) -> str:
    """Name of the tool Claude calls to hand in a reply of this type."""
    try:
        return TOOL_NAMES[reply_type]
    except KeyError:
        return "submit_" + re.sub(r"(?<!^)(?=[A-Z])", "_", reply_type.__name__).lower()


def tool_definition(reply_type: type[BaseModel], input_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Messages API tool whose input is a reply of this type (`input_schema`: a narrower
    schema of the same reply, see `llm.tools`)."""
    doc = (reply_type.__doc__ or reply_type.__name__).strip().splitlines()[0]
    return {
        "name": tool_name(reply_type),
        "description": f"Hand in your answer. {doc}",
        "input_schema": input_schema if input_schema is not None else json_schema(reply_type),
    }
