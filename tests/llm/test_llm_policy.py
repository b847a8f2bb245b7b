"""The structured-call policy over real HTTP: the anthropic SDK against the local fake Messages
API is the sender (`tests.fakes.llm.SDKConnection`), an in-memory ledger takes the attempts.

Request building (per-call tool schemas), the one validation retry with the error fed back,
the budget reservation and the ledger row of every attempt, streaming of long outputs and
batch mode are the policy's; transport errors and SDK retries are the hook's
(tests/plugins/test_llm_hook.py).
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from blofin_pipeline.exceptions import (
    ConfigError,
    LLMBudgetExceeded,
    LLMError,
    LLMResponseError,
)
from blofin_pipeline.llm.budget import worst_case_usd
from blofin_pipeline.llm.policy import StructuredCaller, build_request
from blofin_pipeline.llm.prompts import (
    Prompt,
    build_design_prompt,
    build_review_prompt,
    build_tune_prompt,
)
from blofin_pipeline.llm.schemas import DesignReply, ReviewReply, TuneReply
from blofin_pipeline.llm.settings import LLMSettings
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.llm import (
    BROKEN_DESIGN,
    CODE,
    VALID_DESIGN,
    MemoryLedger,
    SDKConnection,
)

API_KEY = "sk-test-policy-key"
REVIEW = {"summary": "A calm day.", "working": ["ema_cross"], "not_working": [], "risks": [], "recommendations": []}
USAGE = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
         "cache_read_input_tokens": 50_000}
# claude-opus-5: 1000*5 + 2000*25 + 10000*6.25 + 50000*0.5 micro-dollars
USAGE_USD_OPUS = 0.1425
CONTEXT = {"portfolio": {"strategies": [{"name": "ema_cross", "category": "trend"}]},
           "regimes": {"ETH-USDT": {"trend": "range", "volatility": "low"}}, "n_strategies": 1}
DESIGN_PROMPT = build_design_prompt(CONTEXT)


@pytest.fixture
def server():
    with FakeAnthropicServer(api_key=API_KEY) as fake:
        yield fake


#: The previous generation, which takes forced tool use: the pinned prices below are Opus 5's.
MODELS = {"design": "claude-opus-5", "tune": "claude-sonnet-5", "review": "claude-opus-5"}


def caller(server: FakeAnthropicServer, ledger: MemoryLedger | None = None, *, budget_usd: float | None = None,
           **settings: Any) -> StructuredCaller:
    settings.setdefault("models", MODELS)
    connection = SDKConnection(server.base_url, LLMSettings(**settings), api_key=API_KEY)
    return StructuredCaller(connection.create_message, ledger if ledger is not None else MemoryLedger(),
                            settings=connection.settings, budget_usd=budget_usd)


def test_tool_use_reply_is_parsed_into_the_typed_object(server) -> None:
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    reply = caller(server)("design", DESIGN_PROMPT, DesignReply)
    assert isinstance(reply, DesignReply)
    assert reply.strategies[0].name == "vol_breakout" and reply.strategies[0].code == CODE

    [request] = server.message_requests
    body = request.body
    assert body["model"] == "claude-opus-5"  # design routes to Opus by default
    assert body["max_tokens"] == 12000
    [tool] = body["tools"]  # the call's own tool: its schema says what a valid design is
    item = tool["input_schema"]["properties"]["strategies"]["items"]
    assert tool["name"] == "submit_strategies" and item["properties"]["category"]["enum"][0] == "trend"
    assert item["properties"]["name"]["pattern"] == "^[a-z][a-z0-9_]{0,63}$"
    assert body["tool_choice"] == {"type": "tool", "name": "submit_strategies"}
    # one cache breakpoint, at the end of the system (tools and system are the cached prefix)
    assert [b.get("cache_control") for b in body["system"]] == [None, None, {"type": "ephemeral", "ttl": "5m"}]
    assert body["messages"] == [{"role": "user", "content": DESIGN_PROMPT.user}]


def test_usage_row_has_tokens_and_exact_usd(server) -> None:
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    ledger = MemoryLedger()
    caller(server, ledger)("design", DESIGN_PROMPT, DesignReply)
    [row] = ledger.rows
    assert row["step"] == "design" and row["model"] == "claude-opus-5" and row["status"] == "ok"
    assert (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"]) == (
        1000, 2000, 10_000, 50_000)
    assert row["usd"] == pytest.approx(USAGE_USD_OPUS)
    assert row["request_id"].startswith("req_")
    assert isinstance(row["latency_ms"], int) and row["latency_ms"] >= 0


def test_plain_text_json_reply_with_thinking_block(server) -> None:
    server.push_text(json.dumps(REVIEW), thinking="let me think {")
    reply = caller(server, tool_choice="auto")("review", Prompt("You review.", "Review."), ReviewReply)
    assert reply.summary == "A calm day."
    [request] = server.message_requests
    assert request.body["tool_choice"] == {"type": "auto"}
    assert request.body["system"] == "You review."


def test_defaults_are_the_newest_generation_without_forced_tool_use(server) -> None:
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    caller(server, models={})("design", DESIGN_PROMPT, DesignReply)
    [request] = server.message_requests
    assert request.body["model"] == "claude-opus-5-5"
    assert request.body["tool_choice"] == {"type": "auto"}  # Opus 5.5 answers 400 to forced tool use


def test_model_routing_from_the_settings(server) -> None:
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    caller(server, models={"design": "claude-sonnet-5-5"})("design", DESIGN_PROMPT, DesignReply)
    caller(server, models={"design": "claude-haiku-4-5"})("design", DESIGN_PROMPT, DesignReply)
    first, second = server.message_requests
    assert first.body["model"] == "claude-sonnet-5-5"
    # Sonnet 5.5 rejects forced tool use: the policy falls back to auto
    assert first.body["tool_choice"] == {"type": "auto"}
    assert second.body["model"] == "claude-haiku-4-5"
    assert second.body["tool_choice"] == {"type": "tool", "name": "submit_strategies"}


def test_json_schema_output_mode(server) -> None:
    server.push_text(json.dumps(VALID_DESIGN))
    reply = caller(server, structured_output="json_schema")("design", DESIGN_PROMPT, DesignReply)
    assert reply.strategies[0].name == "vol_breakout"
    [request] = server.message_requests
    assert "tools" not in request.body and "tool_choice" not in request.body
    fmt = request.body["output_config"]["format"]
    assert fmt["type"] == "json_schema" and "strategies" in fmt["schema"]["properties"]
    assert "exactly one JSON object" in request.body["messages"][0]["content"]


def test_reply_that_is_not_json_is_retried_once_then_rejected(server) -> None:
    server.push_text("Here are some ideas: buy low, sell high.")
    server.push_text("Still prose, sorry.")
    with pytest.raises(LLMResponseError, match="still invalid after one retry.*not valid JSON"):
        caller(server, tool_choice="auto")("design", DESIGN_PROMPT, DesignReply)
    retry = server.message_requests[1].body["messages"]
    assert retry[1] == {"role": "assistant", "content": [{"type": "text", "text": "Here are some ideas: buy low, sell high."}]}
    assert retry[2]["role"] == "user" and "not valid JSON" in retry[2]["content"]


def test_schema_breaking_reply_is_retried_with_the_validation_error(server) -> None:
    server.push_tool_use("submit_strategies", BROKEN_DESIGN, usage=USAGE)
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    ledger = MemoryLedger()
    reply = caller(server, ledger)("design", DESIGN_PROMPT, DesignReply)
    assert reply.strategies[0].name == "vol_breakout"
    assert [r["status"] for r in ledger.rows] == ["invalid", "ok"]
    assert ledger.spent_usd() == pytest.approx(2 * USAGE_USD_OPUS)  # the failed attempt is paid too

    first, second = server.message_requests
    messages = second.body["messages"]
    assert messages[0] == first.body["messages"][0]
    assistant, feedback = messages[1], messages[2]
    assert assistant["role"] == "assistant" and assistant["content"][0]["type"] == "tool_use"
    [tool_result] = feedback["content"]
    assert tool_result["type"] == "tool_result" and tool_result["is_error"] is True
    assert tool_result["tool_use_id"] == assistant["content"][0]["id"]
    assert "strategies[0].name" in tool_result["content"] and "'Vol Breakout'" in tool_result["content"]
    assert second.body["system"] == first.body["system"]  # same cached prefix


def test_twice_broken_reply_raises_response_error(server) -> None:
    server.push_tool_use("submit_strategies", BROKEN_DESIGN)
    server.push_tool_use("submit_strategies", {"strategies": [{"name": "ok_name", "category": "arbitrage",
                                                                "rationale": "r", "code": CODE}]})
    ledger = MemoryLedger()
    with pytest.raises(LLMResponseError) as info:
        caller(server, ledger)("design", DESIGN_PROMPT, DesignReply)
    assert "still invalid after one retry" in str(info.value)
    assert "strategies[0].category: category 'arbitrage'" in str(info.value)
    assert info.value.request_id.startswith("req_")
    assert len(server.message_requests) == 2
    assert [r["status"] for r in ledger.rows] == ["invalid", "invalid"]
    assert server.pending == 0


def test_hostile_reply_outside_the_allowed_categories_is_rejected(server) -> None:
    hostile = {"strategies": [{**VALID_DESIGN["strategies"][0], "category": "trend"}]}
    server.push_tool_use("submit_strategies", hostile)
    server.push_tool_use("submit_strategies", hostile)
    with pytest.raises(LLMResponseError, match="category 'trend' is not one of breakout"):
        caller(server)("design", DESIGN_PROMPT, DesignReply, categories=["breakout"])


def test_tune_out_of_bounds_params_are_retried(server) -> None:
    candidates = [{"name": "ema_cross", "category": "trend", "params": {"fast": 12},
                   "param_space": {"fast": [5, 50]}, "metrics": {"sharpe": -0.2}, "code": CODE}]
    bad = {"proposals": [{"strategy": "ema_cross", "params": {"fast": 80}, "rationale": "r", "diagnosis": "d"}]}
    good = {"proposals": [{"strategy": "ema_cross", "params": {"fast": 30}, "rationale": "r", "diagnosis": "d"}]}
    server.push_tool_use("submit_tuning", bad)
    server.push_tool_use("submit_tuning", good)
    reply = caller(server)("tune", build_tune_prompt({"candidates": candidates}), TuneReply,
                           param_bounds={"ema_cross": {"fast": [5, 50]}})
    assert reply.proposals[0].params == {"fast": 30}
    first, second = server.message_requests
    assert first.body["model"] == "claude-sonnet-5"
    assert "'fast'=80 is outside [5, 50]" in second.body["messages"][2]["content"][0]["content"]
    # the tool said it first: the strategy is one of the targets, each parameter within its bounds
    [branch] = first.body["tools"][0]["input_schema"]["properties"]["proposals"]["items"]["anyOf"]
    assert branch["properties"]["strategy"]["enum"] == ["ema_cross"]
    assert branch["properties"]["params"]["properties"]["fast"] == {"type": "integer", "minimum": 5, "maximum": 50}
    assert branch["properties"]["params"]["required"] == ["fast"]


def test_budget_exhausted_stops_before_any_request(server) -> None:
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    ledger = MemoryLedger(spent_before=5.0)
    with pytest.raises(LLMBudgetExceeded, match=r"before step 'design': \$5\.0000 spent or reserved today"):
        caller(server, ledger, budget_usd=5.0)("design", DESIGN_PROMPT, DesignReply)
    assert server.message_requests == [] and ledger.rows == []


def test_a_budget_just_above_one_worst_case_sends_exactly_one_call(server) -> None:
    for _ in range(3):
        server.push_tool_use("submit_strategies", VALID_DESIGN, usage={"input_tokens": 3000, "output_tokens": 500})
    llm = caller(server)
    worst = worst_case_usd(build_request(llm.settings, "design", DESIGN_PROMPT, DesignReply))
    ledger = MemoryLedger()
    llm = caller(server, ledger, budget_usd=worst * 1.01)
    llm("design", DESIGN_PROMPT, DesignReply)
    with pytest.raises(LLMBudgetExceeded):  # what the first cost + a second worst case > the budget
        llm("design", DESIGN_PROMPT, DesignReply)
    assert len(server.message_requests) == 1
    assert [a["status"] for a in ledger.attempts.values()] == ["ok"]
    assert ledger.spent_usd() < worst


def test_budget_spent_during_the_call_stops_the_retry(server) -> None:
    server.push_tool_use("submit_strategies", BROKEN_DESIGN, usage=USAGE)  # costs 0.1425
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    ledger = MemoryLedger(spent_before=0.1)
    # 0.1 spent before + 0.1425 for the invalid attempt > 0.2: the retry is not sent
    with pytest.raises(LLMBudgetExceeded):
        caller(server, ledger, budget_usd=0.2, max_tokens={"design": 1000})("design", DESIGN_PROMPT, DesignReply)
    assert len(server.message_requests) == 1
    assert [r["status"] for r in ledger.rows] == ["invalid"]


def test_reply_cut_at_max_tokens_is_retried_with_more_room(server) -> None:
    server.push_text('{"strategies": [{"name": "vol_breakout", "category": "breakout", "ratio', stop_reason="max_tokens")
    server.push_text(json.dumps(VALID_DESIGN))
    reply = caller(server, tool_choice="auto", max_tokens={"design": 3000})("design", DESIGN_PROMPT, DesignReply)
    assert reply.strategies[0].name == "vol_breakout"
    first, second = server.message_requests
    assert (first.body["max_tokens"], second.body["max_tokens"]) == (3000, 6000)
    assert "max_tokens" in second.body["messages"][2]["content"]


def test_a_failed_send_leaves_an_error_row_and_names_the_step() -> None:
    def failing(**request: Any) -> Any:
        raise LLMResponseError("the API's reply body is malformed", request_id="req_broken")

    ledger = MemoryLedger()
    with pytest.raises(LLMResponseError, match="step 'design': the API's reply body is malformed") as info:
        StructuredCaller(failing, ledger)("design", DESIGN_PROMPT, DesignReply)
    assert info.value.request_id == "req_broken"
    [row] = ledger.rows
    assert (row["status"], row["usd"], row["request_id"], row["model"]) == ("error", 0.0, "req_broken", "claude-opus-5-5")

    def unreachable(**request: Any) -> Any:
        raise LLMError("could not reach the Anthropic API")

    with pytest.raises(LLMError, match="step 'review': could not reach") as info:
        StructuredCaller(unreachable, ledger)("review", Prompt("s", "u"), ReviewReply)
    assert type(info.value) is LLMError and ledger.rows[-1]["request_id"] is None


def test_auto_mode_runs_every_step_with_cache_reads() -> None:
    with FakeAnthropicServer(auto=True, api_key=API_KEY) as fake:
        ledger = MemoryLedger()
        llm = caller(fake, ledger)
        context = {**CONTEXT, "regimes": {"BTC-USDT": {"trend": "up", "volatility": "high"}}, "n_strategies": 3}
        designed = llm("design", build_design_prompt(context), DesignReply)
        assert len({s.name for s in designed.strategies}) == 3
        again = llm("design", build_design_prompt(context), DesignReply)
        assert {s.name for s in again.strategies}.isdisjoint(s.name for s in designed.strategies)
        tuned = llm("tune", build_tune_prompt({**context, "candidates": [
            {"name": "ema_cross", "category": "trend", "params": {"fast": 12, "slow": 26},
             "param_space": {"fast": [5, 50], "slow": [20, 200]}, "metrics": {"sharpe": -0.1}}]}), TuneReply)
        assert tuned.proposals[0].params == {"fast": 28, "slow": 110}
        review = llm("review", build_review_prompt({**context, "report": {"leaderboard": [{"name": "ema_cross"}]}}),
                     ReviewReply)
        assert review.recommendations
    rows = ledger.rows
    assert [r["step"] for r in rows] == ["design", "design", "tune", "review"]
    assert [r["model"] for r in rows] == ["claude-opus-5", "claude-opus-5", "claude-sonnet-5", "claude-opus-5"]
    # each call here offers its own tool (no day prefix), so only the repeated design reads the cache
    assert rows[0]["cache_creation_tokens"] > 0 and rows[0]["cache_read_tokens"] == 0
    assert rows[1]["cache_read_tokens"] == rows[0]["cache_creation_tokens"]  # same prefix, read from cache
    assert all(r["status"] == "ok" and r["usd"] > 0 for r in rows)


# --- settings ------------------------------------------------------------------------------
def test_settings_from_connection_extras() -> None:
    settings = LLMSettings.from_extras({
        "models": {"tune": "claude-opus-5"}, "max_tokens": {"review": "2000"}, "tool_choice": "any",
        "prices": {"my-model": {"input": 1, "output": 2, "cache_write_5m": 1, "cache_write_1h": 1, "cache_read": 0.1}},
    }, source="connection 'x'")
    assert settings.model_for("tune") == "claude-opus-5" and settings.model_for("design") == "claude-opus-5-5"
    assert settings.max_tokens_for("review") == 2000 and settings.max_tokens_for("tune") == 8000
    assert settings.tool_choice_for("claude-opus-5", "submit_tuning") == {"type": "any"}
    assert settings.prices["my-model"].output == 2
    assert LLMSettings().tool_choice_for("claude-opus-5", "t") == {"type": "tool", "name": "t"}


def test_stream_threshold_cache_ttl_and_batch_settings_from_extras() -> None:
    settings = LLMSettings.from_extras({"stream_above_tokens": 5000, "cache_ttl": "1h",
                                        "batch": {"timeout_s": 600, "poll_s": 5, "cache_discount": False}},
                                       source="connection 'x'")
    assert settings.streams(5001) and not settings.streams(5000)
    assert settings.ttl_for(batch=False) == settings.ttl_for(batch=True) == "1h"
    assert (settings.batch.timeout_s, settings.batch.price_factor, settings.batch.cache_factor) == (600, 0.5, 1.0)
    assert (LLMSettings().ttl_for(batch=False), LLMSettings().ttl_for(batch=True)) == ("5m", "1h")
    assert LLMSettings().streams(12_000) and not LLMSettings().streams(8000)


@pytest.mark.parametrize("extras, problem", [
    ({"models": ["claude-opus-5"]}, "must be objects"),
    ({"prices": {"m": {"input": 1}}}, "bad 'prices'"),
    ({"structured_output": "xml"}, "structured_output 'xml'"),
    ({"tool_choice": "none"}, "tool_choice 'none'"),
    ({"cache_ttl": "1d"}, "cache_ttl '1d'"),
    ({"batch": {"timeout": 5}}, "bad 'batch'"),
    ({"batch": {"price_factor": 2}}, "batch settings out of range"),
])
def test_bad_extras_are_config_errors_naming_the_connection(extras, problem) -> None:
    with pytest.raises(ConfigError, match=f"connection 'anthropic_default': .*{problem}"):
        LLMSettings.from_extras(extras, source="connection 'anthropic_default'")
