"""Extract and validate the structured object of a Messages API reply.

The reply is taken as a plain dict in the API's wire shape (an SDK `Message` is accepted
too and dumped first). The object comes from the `tool_use` block calling the expected
tool, or else from JSON in the text blocks; `thinking` blocks are ignored. Every failure
raises `LLMResponseError` whose message says what was wrong and where, because that
message is sent back to the model for its one retry.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from blofin_pipeline.exceptions import LLMResponseError

T = TypeVar("T", bound=BaseModel)

IGNORED_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})
_FENCE_RE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def message_to_dict(message: Any) -> dict[str, Any]:
    """Wire-shaped dict of a reply: dicts pass through, SDK models are dumped."""
    if isinstance(message, Mapping):
        return dict(message)
    dump = getattr(message, "model_dump", None)
    if dump is None:
        raise LLMResponseError(f"reply of type {type(message).__name__} is not a Messages API message")
    return dump(mode="json", exclude_none=True)


def _json_from_text(text: str) -> Any:
    """The JSON value in a text block: whole text, a fenced block, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE_RE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    last_error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as err:
            last_error = err
    detail = f": {last_error.msg} at line {last_error.lineno} column {last_error.colno}" if last_error else ""
    raise LLMResponseError(f"the text reply is not valid JSON{detail}")


def extract_payload(message: Any, tool: str | None = None) -> Any:
    """Return the raw structured payload of a reply (tool input, or JSON from text)."""
    reply = message_to_dict(message)
    stop_reason = reply.get("stop_reason")
    if stop_reason == "refusal":
        raise LLMResponseError("the model refused to answer (stop_reason 'refusal')")
    content = reply.get("content")
    if not isinstance(content, list):
        raise LLMResponseError("reply has no 'content' list")
    blocks = [b for b in content if isinstance(b, Mapping) and b.get("type") not in IGNORED_BLOCK_TYPES]
    tool_uses = [b for b in blocks if b.get("type") == "tool_use"]
    if tool is not None:
        named = [b for b in tool_uses if b.get("name") == tool]
        if named:
            payload = named[0].get("input")
            if not isinstance(payload, Mapping):
                raise LLMResponseError(f"tool {tool!r} was called with a non-object input")
            return dict(payload)
        if tool_uses:
            others = ", ".join(repr(b.get("name")) for b in tool_uses)
            raise LLMResponseError(f"expected a call to tool {tool!r}, got a call to {others}")
    elif tool_uses:
        return tool_uses[0].get("input")
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    if not text.strip():
        kinds = ", ".join(sorted({str(b.get("type")) for b in content if isinstance(b, Mapping)})) or "none"
        suffix = " (reply cut at max_tokens)" if stop_reason == "max_tokens" else ""
        raise LLMResponseError(f"reply holds no tool call and no text (block types: {kinds}){suffix}")
    try:
        return _json_from_text(text)
    except LLMResponseError as err:
        if stop_reason == "max_tokens":
            raise LLMResponseError(f"{err} (reply cut at max_tokens)") from err
        raise


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem: `strategies[0].name: <what was wrong> (got <value>)`."""
    lines = []
    for problem in err.errors(include_url=False):
        msg = problem["msg"].removeprefix("Value error, ")
        got = problem.get("input")
        got_text = "" if problem["type"] == "missing" else f" (got {json.dumps(got, default=str)[:80]})"
        lines.append(f"{_loc(tuple(problem['loc']))}: {msg}{got_text}")
    return "; ".join(lines)


def validate_reply(
    reply_type: type[T],
    payload: Any,
    *,
    categories: tuple[str, ...] | list[str] | None = None,
    param_bounds: Mapping[str, Mapping[str, Any]] | None = None,
) -> T:
    """Validate a payload into `reply_type`; LLMResponseError names each bad field."""
    if not isinstance(payload, Mapping):
        raise LLMResponseError(
            f"{reply_type.__name__}: expected a JSON object, got {type(payload).__name__}"
        )
    context: dict[str, Any] = {}
    if categories is not None:
        context["categories"] = tuple(categories)
    if param_bounds is not None:
        context["param_bounds"] = param_bounds
    try:
        return reply_type.model_validate(dict(payload), context=context)
    except ValidationError as err:
        raise LLMResponseError(f"{reply_type.__name__} invalid: {describe_validation_error(err)}") from err


def parse_reply(
    message: Any,
    reply_type: type[T],
    *,
    tool: str | None = None,
    categories: tuple[str, ...] | list[str] | None = None,
    param_bounds: Mapping[str, Mapping[str, Any]] | None = None,
) -> T:
    """Extract the structured object from a reply and validate it."""
    reply = message_to_dict(message)
    try:
        payload = extract_payload(reply, tool)
        return validate_reply(reply_type, payload, categories=categories, param_bounds=param_bounds)
    except LLMResponseError as err:
        if reply.get("stop_reason") == "max_tokens" and "max_tokens" not in str(err):
            raise LLMResponseError(f"{err} (reply cut at max_tokens)") from err
        raise
