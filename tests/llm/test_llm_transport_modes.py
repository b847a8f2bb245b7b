"""Streaming, SDK retries, the shared day prefix hitting the prompt cache, and batch mode:
the policy over real HTTP against the fake Messages API (which applies the caching rules)."""
from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import LLMBatchPending
from blofin_pipeline.llm.batch import BatchAnswers, BatchMode, wait_for_batch
from blofin_pipeline.llm.models import cost_usd
from blofin_pipeline.llm.policy import StructuredCaller
from blofin_pipeline.llm.prefix import build_day_prefix
from blofin_pipeline.llm.prompts import (
    build_design_prompt,
    build_review_prompt,
    build_tune_prompt,
)
from blofin_pipeline.llm.schemas import CATEGORIES, DesignReply, ReviewReply, TuneReply
from blofin_pipeline.llm.settings import BatchSettings, LLMSettings
from blofin_pipeline.llm.tools import day_tools
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.llm import VALID_DESIGN, MemoryLedger, SDKConnection

SPACE = {"fast": [5, 50], "slow": [20, 200]}
BRIEFING = {"run": {"run_date": "2026-11-24", "timeframe": "1H", "fee": 0.0006, "slippage": 0.0001},
            "portfolio": {"strategies": [{"name": f"s{i}", "category": "trend", "mean_score": i / 7}
                                         for i in range(20)]},
            "regimes": {"BTC-USDT": {"trend": "up", "volatility": "high"}}}
PREFIX = build_day_prefix(BRIEFING, tools=day_tools(categories=CATEGORIES, n_designs=2,
                                                    tune_targets={"ema_cross": SPACE}))
TARGET = {"name": "ema_cross", "category": "trend", "params": {"fast": 12, "slow": 26}, "param_space": SPACE,
          "metrics": {"sharpe": -0.3}, "diagnosis": ["overtrading"], "code": "..."}


def connected(server: FakeAnthropicServer, **settings) -> tuple[SDKConnection, MemoryLedger]:
    return SDKConnection(server.base_url, LLMSettings(**settings), max_retries=2), MemoryLedger()


def day_of_calls(llm: StructuredCaller) -> None:
    llm("design", build_design_prompt({"n_strategies": 2}, PREFIX), DesignReply)
    llm("tune", build_tune_prompt({"candidates": [TARGET]}, PREFIX), TuneReply, param_bounds={"ema_cross": SPACE})
    llm("review", build_review_prompt({"report": {"leaderboard": [{"name": "s1"}]}}, PREFIX), ReviewReply)


def test_the_second_and_third_call_of_a_day_read_the_shared_prefix_from_the_cache() -> None:
    with FakeAnthropicServer(schema=True, seed=3) as server:
        connection, ledger = connected(server)
        day_of_calls(StructuredCaller(connection.create_message, ledger, settings=connection.settings))
        tools_sent = [r.body["tools"] for r in server.message_requests]
    design, tune, review = ledger.rows
    assert tools_sent[0] == tools_sent[1] == tools_sent[2]  # the day's tools: part of the shared prefix
    assert design["cache_creation_tokens"] > 1024 and design["cache_read_tokens"] == 0
    assert tune["cache_read_tokens"] == review["cache_read_tokens"] == design["cache_creation_tokens"]
    assert tune["cache_creation_tokens"] == review["cache_creation_tokens"] == 0
    assert review["usd"] < design["usd"]


def test_a_cache_is_per_model_so_a_step_on_another_model_writes_its_own() -> None:
    with FakeAnthropicServer(schema=True, seed=4) as server:
        connection, ledger = connected(server, models={"tune": "claude-sonnet-5-5"})
        day_of_calls(StructuredCaller(connection.create_message, ledger, settings=connection.settings))
    design, tune, review = ledger.rows
    assert tune["cache_read_tokens"] == 0 and tune["cache_creation_tokens"] == design["cache_creation_tokens"]
    assert review["cache_read_tokens"] == design["cache_creation_tokens"]


def test_a_prefix_below_the_models_minimum_is_never_cached() -> None:
    with FakeAnthropicServer(schema=True, min_cache_tokens={"claude-opus-5-5": 10**6}) as server:
        connection, ledger = connected(server)
        llm = StructuredCaller(connection.create_message, ledger, settings=connection.settings)
        for _ in range(2):
            llm("design", build_design_prompt({"n_strategies": 2}, PREFIX), DesignReply)
    assert all(r["cache_creation_tokens"] == 0 and r["cache_read_tokens"] == 0 for r in ledger.rows)


def test_overload_and_rate_limit_are_retried_by_the_sdk_and_counted() -> None:
    with FakeAnthropicServer(schema=True) as server:
        server.push_error(529, retry_after_ms=5)
        server.push_error(429, retry_after_ms=5)
        connection, ledger = connected(server)
        llm = StructuredCaller(connection.create_message, ledger, settings=connection.settings)
        llm("review", build_review_prompt({"report": {"x": 1}}, PREFIX), ReviewReply)
        assert len(server.message_requests) == 3
    [row] = ledger.rows
    assert row["status"] == "ok" and row["http_retries"] == 2


def test_long_outputs_are_streamed() -> None:
    with FakeAnthropicServer(api_key="sk-test-key") as server:
        server.push_tool_use("submit_strategies", VALID_DESIGN, usage={"input_tokens": 10, "output_tokens": 20})
        connection, ledger = connected(server, max_tokens={"design": 24_000}, models={"design": "claude-opus-5"})
        llm = StructuredCaller(connection.create_message, ledger, settings=connection.settings)
        reply = llm("design", build_design_prompt({"n_strategies": 1}), DesignReply)
        [request] = server.message_requests
    assert reply.strategies[0].name == "vol_breakout"
    assert request.body["stream"] is True and request.body["max_tokens"] == 24_000
    [attempt] = ledger.attempts.values()
    assert attempt["mode"] == "stream" and attempt["output_tokens"] == 20 and attempt["request_id"].startswith("req_")


def batched(server: FakeAnthropicServer, ledger: MemoryLedger, answers: BatchAnswers | None) -> StructuredCaller:
    connection = SDKConnection(server.base_url, LLMSettings(batch=BatchSettings(timeout_s=5, poll_s=0.05)))
    return StructuredCaller(connection.create_message, ledger, settings=connection.settings,
                            batch=BatchMode(answers))


def test_batch_mode_collects_then_answers_from_the_batch_at_half_price() -> None:
    prompt = build_design_prompt({"n_strategies": 2}, PREFIX)
    with FakeAnthropicServer(schema=True, seed=5, batch_delay_s=0.2) as server:
        ledger = MemoryLedger()
        with pytest.raises(LLMBatchPending) as pending:
            batched(server, ledger, None)("design", prompt, DesignReply)
        [request] = pending.value.requests
        assert server.message_requests == [] and ledger.spent_usd() > 0  # reserved, nothing sent
        connection = SDKConnection(server.base_url, LLMSettings(batch=BatchSettings(timeout_s=5, poll_s=0.05)))
        batch_id = connection.submit_batch(pending.value.requests)
        ledger.attempts[request["custom_id"]]["request_id"] = batch_id
        answers = wait_for_batch(batch_id, connection, connection.settings.batch)
        reply = batched(server, ledger, answers)("design", prompt, DesignReply)
        assert server.message_requests == []  # answered by the batch alone
        [result] = server.batches.get(batch_id).results
    assert reply.strategies
    [attempt] = ledger.attempts.values()
    assert (attempt["mode"], attempt["status"], attempt["request_id"]) == ("batch", "ok", batch_id)
    usage = result["result"]["message"]["usage"]
    assert usage["service_tier"] == "batch" and usage["cache_creation_input_tokens"] > 0
    assert attempt["usd"] == pytest.approx(cost_usd("claude-opus-5-5", usage) / 2, rel=1e-6)


def test_a_batch_that_does_not_end_in_time_is_canceled_and_the_call_goes_direct() -> None:
    prompt = build_design_prompt({"n_strategies": 2}, PREFIX)
    with FakeAnthropicServer(schema=True, seed=6) as server:
        server.batches.hold = True  # never ends
        ledger = MemoryLedger()
        with pytest.raises(LLMBatchPending) as pending:
            batched(server, ledger, None)("design", prompt, DesignReply)
        connection = SDKConnection(server.base_url)
        batch_id = connection.submit_batch(pending.value.requests)
        answers = wait_for_batch(batch_id, connection, BatchSettings(timeout_s=0.3, poll_s=0.05))
        reply = batched(server, ledger, answers)("design", prompt, DesignReply)
        assert len(server.message_requests) == 1  # the fallback
        assert server.batches.get(batch_id).status == "ended"  # canceled
    assert reply.strategies and "did not end within 0.3 s" in answers.failure
    batch_try, direct = ledger.attempts.values()
    assert (batch_try["mode"], batch_try["status"], batch_try["usd"]) == ("batch", "error", 0.0)
    assert "canceled" in batch_try["error"]
    assert (direct["mode"], direct["status"]) == ("stream", "ok")  # design's 12000 tokens are streamed
