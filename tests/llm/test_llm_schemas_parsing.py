"""Reply schemas, their validation rules, and extraction from Messages API replies."""
from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from blofin_pipeline.exceptions import LLMResponseError
from blofin_pipeline.llm.parsing import extract_payload, parse_reply, validate_reply
from blofin_pipeline.llm.schemas import (
    DesignReply,
    ReviewReply,
    TuneReply,
    json_schema,
    tool_definition,
    tool_name,
)


class Note(BaseModel):
    """A one-field reply for the extraction tests (its tool: `submit_note`)."""

    summary: str


CODE = "from blofin_pipeline.strategies import Strategy\n\nclass A(Strategy):\n    name = 'a'\n"


def design(**overrides: Any) -> dict[str, Any]:
    strategy = {"name": "vol_breakout_1", "category": "breakout", "rationale": "fills a gap", "code": CODE}
    strategy.update(overrides)
    return {"strategies": [strategy]}


def message(*blocks: dict[str, Any], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-5",
            "content": list(blocks), "stop_reason": stop_reason,
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def test_valid_design_reply() -> None:
    reply = validate_reply(DesignReply, design())
    assert reply.strategies[0].name == "vol_breakout_1"
    assert reply.strategies[0].category == "breakout"


@pytest.mark.parametrize("bad", ["VolBreakout", "vol breakout", "1vol", "vol-breakout", "class", "", "a" * 65])
def test_design_name_must_be_snake_case_identifier(bad: str) -> None:
    with pytest.raises(LLMResponseError, match=r"strategies\[0\]\.name: strategy name .* snake_case"):
        validate_reply(DesignReply, design(name=bad))


def test_design_category_must_be_allowed() -> None:
    with pytest.raises(LLMResponseError, match=r"strategies\[0\]\.category: category 'arbitrage' is not one of"):
        validate_reply(DesignReply, design(category="arbitrage"))
    # the caller can narrow the set
    with pytest.raises(LLMResponseError, match="category 'breakout'"):
        validate_reply(DesignReply, design(), categories=["trend"])


def test_design_code_must_not_be_empty_and_missing_field_is_named() -> None:
    with pytest.raises(LLMResponseError, match=r"strategies\[0\]\.code: code must not be empty"):
        validate_reply(DesignReply, design(code="  \n"))
    payload = design()
    del payload["strategies"][0]["rationale"]
    with pytest.raises(LLMResponseError, match=r"strategies\[0\]\.rationale: Field required"):
        validate_reply(DesignReply, payload)


def test_design_needs_at_least_one_and_unique_names() -> None:
    with pytest.raises(LLMResponseError, match="strategies"):
        validate_reply(DesignReply, {"strategies": []})
    twice = {"strategies": design()["strategies"] * 2}
    with pytest.raises(LLMResponseError, match="repeated: vol_breakout_1"):
        validate_reply(DesignReply, twice)


def tune(params: dict[str, Any], strategy: str = "ema_cross", **extra: Any) -> dict[str, Any]:
    return {"proposals": [{"strategy": strategy, "params": params, "rationale": "r", "diagnosis": "d", **extra}]}


BOUNDS = {"ema_cross": {"fast": (5, 50), "slow": (20, 200), "band": (0.5, 3.0)}}


def test_tune_params_within_bounds_pass() -> None:
    reply = validate_reply(TuneReply, tune({"fast": 10, "band": 1.25}), param_bounds=BOUNDS)
    assert reply.proposals[0].params == {"fast": 10, "band": 1.25}
    assert reply.proposals[0].code is None


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"fast": 60}, r"parameter 'fast'=60 is outside \[5, 50\]"),
        ({"band": 0.1}, r"parameter 'band'=0.1 is outside \[0.5, 3.0\]"),
        ({"fast": 7.5}, r"parameter 'fast'=7.5 must be an integer"),
        ({"fast": "fast"}, r"parameter 'fast' must be a number"),
        ({"lookback": 3}, r"parameter 'lookback' is not in param_space"),
    ],
)
def test_tune_params_outside_bounds_name_the_parameter(params: dict[str, Any], problem: str) -> None:
    with pytest.raises(LLMResponseError, match=r"proposals\[0\]\.params: strategy 'ema_cross': " + problem):
        validate_reply(TuneReply, tune(params), param_bounds=BOUNDS)


def test_tune_unknown_strategy_rejected_when_bounds_given() -> None:
    with pytest.raises(LLMResponseError, match="'rsi_fade' is not one of the strategies to tune: ema_cross"):
        validate_reply(TuneReply, tune({"fast": 10}, strategy="rsi_fade"), param_bounds=BOUNDS)
    # without bounds, any snake_case strategy and params are accepted
    assert validate_reply(TuneReply, tune({"x": 1e9}, strategy="rsi_fade")).proposals[0].strategy == "rsi_fade"


def test_tune_optional_code_must_not_be_blank() -> None:
    with pytest.raises(LLMResponseError, match=r"proposals\[0\]\.code: code must not be empty"):
        validate_reply(TuneReply, tune({"fast": 10}, code=""))
    assert validate_reply(TuneReply, tune({"fast": 10}, code=CODE)).proposals[0].code == CODE


def test_review() -> None:
    review = validate_reply(ReviewReply, {"summary": "s", "working": ["a"], "not_working": [],
                                          "risks": ["r"], "recommendations": ["x"]})
    assert review.working == ["a"]
    with pytest.raises(LLMResponseError, match="risks: Field required"):
        validate_reply(ReviewReply, {"summary": "s", "working": [], "not_working": [], "recommendations": []})
    with pytest.raises(LLMResponseError, match="summary: summary must not be empty"):
        validate_reply(ReviewReply, {"summary": " ", "working": [], "not_working": [], "risks": [],
                                     "recommendations": []})


def test_non_object_payload() -> None:
    with pytest.raises(LLMResponseError, match="expected a JSON object, got list"):
        validate_reply(ReviewReply, ["summary"])


@pytest.mark.parametrize("reply_type", [DesignReply, TuneReply, ReviewReply])
def test_tool_definition_is_a_self_contained_object_schema(reply_type: type) -> None:
    tool = tool_definition(reply_type)
    assert tool["name"].startswith("submit_")
    schema = tool["input_schema"]
    assert schema["type"] == "object"
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    assert set(schema["required"]) <= set(schema["properties"])


def test_a_reply_type_without_a_registered_tool_gets_a_derived_name() -> None:
    assert tool_name(Note) == "submit_note"
    assert tool_name(DesignReply) == "submit_strategies"


def test_design_schema_lists_required_strategy_fields() -> None:
    item = json_schema(DesignReply)["properties"]["strategies"]["items"]
    assert set(item["required"]) == {"name", "category", "rationale", "code"}


# --- extraction ------------------------------------------------------------------------
def test_tool_use_input_is_extracted() -> None:
    reply = message({"type": "text", "text": "Here you go."},
                    {"type": "tool_use", "id": "toolu_1", "name": "submit_strategies", "input": design()},
                    stop_reason="tool_use")
    parsed = parse_reply(reply, DesignReply, tool="submit_strategies")
    assert parsed.strategies[0].code == CODE


def test_call_to_another_tool_is_an_error() -> None:
    reply = message({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}})
    with pytest.raises(LLMResponseError, match="expected a call to tool 'submit_note', got a call to 'get_weather'"):
        extract_payload(reply, "submit_note")


def test_json_text_reply_with_thinking_first_is_parsed() -> None:
    reply = message({"type": "thinking", "thinking": "{not json", "signature": "s"},
                    {"type": "text", "text": '{"summary": "ok"}'})
    assert parse_reply(reply, Note, tool="submit_note").summary == "ok"


def test_fenced_and_embedded_json_in_text() -> None:
    fenced = message({"type": "text", "text": 'Sure:\n```json\n{"summary": "fenced"}\n```\nDone.'})
    assert parse_reply(fenced, Note).summary == "fenced"
    embedded = message({"type": "text", "text": 'Answer: {"summary": "inline"} -- end'})
    assert parse_reply(embedded, Note).summary == "inline"


def test_text_that_is_not_json() -> None:
    with pytest.raises(LLMResponseError, match="not valid JSON"):
        parse_reply(message({"type": "text", "text": "I think you should buy."}), Note)


def test_truncated_reply_says_max_tokens() -> None:
    reply = message({"type": "text", "text": '{"summary": "cut'}, stop_reason="max_tokens")
    with pytest.raises(LLMResponseError, match="max_tokens"):
        parse_reply(reply, Note)


def test_refusal_and_empty_content() -> None:
    with pytest.raises(LLMResponseError, match="refused"):
        parse_reply(message({"type": "text", "text": "no"}, stop_reason="refusal"), Note)
    with pytest.raises(LLMResponseError, match="no tool call and no text .*thinking"):
        parse_reply(message({"type": "thinking", "thinking": "hm", "signature": "s"}), Note)
    with pytest.raises(LLMResponseError, match="no 'content' list"):
        parse_reply({"type": "message"}, Note)


def test_tool_input_cut_at_max_tokens_says_so() -> None:
    reply = message({"type": "tool_use", "id": "toolu_1", "name": "submit_note", "input": {}},
                    stop_reason="max_tokens")
    with pytest.raises(LLMResponseError, match=r"summary: Field required.*\(reply cut at max_tokens\)"):
        parse_reply(reply, Note, tool="submit_note")
