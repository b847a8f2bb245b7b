"""BlofinLLMHook through the real anthropic SDK against a local fake Messages API server.

The connection comes from `AIRFLOW_CONN_ANTHROPIC_DEFAULT` (JSON form) whose host is the
fake server, so the SDK's HTTP code, retries and `retry-after` handling all run for real.
Retry waits are kept tiny with `retry-after-ms` / fractional `retry-after` headers.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

# Airflow puts plugins/ on sys.path; so do we. The project root makes `tests.fakes`
# importable however pytest was started (tests/plugins has no __init__.py).
ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from blofin_llm_hook import BlofinLLMHook  # noqa: E402

from blofin_pipeline.exceptions import LLMBudgetExceeded, LLMError, LLMResponseError  # noqa: E402
from blofin_pipeline.llm.prompts import build_design_prompt  # noqa: E402
from blofin_pipeline.llm.schemas import DesignReply, SummaryReply, TuneReply  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropicServer  # noqa: E402

API_KEY = "sk-test-5ecret-key-0123456789"
DATE = "2026-11-24"
CODE = (
    "from blofin_pipeline.strategies import Strategy\n\n\n"
    "class VolBreakout(Strategy):\n    name = 'vol_breakout'\n"
)
VALID_DESIGN = {"strategies": [{"name": "vol_breakout", "category": "breakout",
                                "rationale": "Covers the breakout gap on ETH.", "code": CODE}]}
BROKEN_DESIGN = {"strategies": [{"name": "Vol Breakout", "category": "breakout",
                                 "rationale": "Covers the breakout gap on ETH.", "code": CODE}]}
USAGE = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
         "cache_read_input_tokens": 50_000}
# claude-opus-5: 1000*5 + 2000*25 + 10000*6.25 + 50000*0.5 micro-dollars
USAGE_USD_OPUS = 0.1425


@pytest.fixture
def server():
    with FakeAnthropicServer(api_key=API_KEY) as fake:
        yield fake


def connect(monkeypatch: pytest.MonkeyPatch, server: FakeAnthropicServer, **extra: Any) -> BlofinLLMHook:
    extra.setdefault("anthropic_client_kwargs", {"max_retries": 2, "timeout": 20})
    conn = {"conn_type": "anthropic", "password": API_KEY, "host": server.base_url, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return BlofinLLMHook()


def design_prompt() -> tuple[list[dict], str]:
    prompt = build_design_prompt({"portfolio": {"strategies": [{"name": "ema_cross", "category": "trend"}]},
                                  "regimes": {"ETH-USDT": {"trend": "range", "volatility": "low"}},
                                  "n_strategies": 1})
    return prompt.system, prompt.user


def call_design(hook: BlofinLLMHook, rows: list[dict], **kwargs: Any):
    system, user = design_prompt()
    return hook.generate_structured("design", system, user, DesignReply, logical_date=DATE,
                                    usage_sink=rows.append, **kwargs)


def test_tool_use_reply_is_parsed_into_the_typed_object(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    rows: list[dict] = []
    result = call_design(hook, rows)
    assert isinstance(result.value, DesignReply)
    assert result.value.strategies[0].name == "vol_breakout"
    assert result.value.strategies[0].code == CODE

    [request] = server.message_requests
    assert request.api_key == API_KEY
    body = request.body
    assert body["model"] == "claude-opus-5"  # design routes to Opus by default
    assert body["tools"][0]["name"] == "submit_strategies"
    assert body["tools"][0]["input_schema"]["type"] == "object"
    assert body["tool_choice"] == {"type": "tool", "name": "submit_strategies"}
    # the contract and the market context travel as cached system blocks
    assert [b.get("cache_control") for b in body["system"]] == [None, {"type": "ephemeral"}, {"type": "ephemeral"}]
    assert body["messages"] == [{"role": "user", "content": design_prompt()[1]}]


def test_usage_row_has_tokens_and_exact_usd(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    rows: list[dict] = []
    result = call_design(hook, rows)
    assert rows == result.usage
    [row] = rows
    assert row["step"] == "design" and row["model"] == "claude-opus-5" and row["status"] == "ok"
    assert (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"]) == (
        1000, 2000, 10_000, 50_000)
    assert row["usd"] == pytest.approx(USAGE_USD_OPUS)
    assert row["logical_date"] == DATE
    assert row["request_id"].startswith("req_")
    assert isinstance(row["latency_ms"], int) and row["latency_ms"] >= 0
    assert result.usd == pytest.approx(USAGE_USD_OPUS)


def test_plain_text_json_reply_with_thinking_block(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, tool_choice="auto")
    server.push_text(json.dumps({"summary": "A calm day."}), thinking="let me think {")
    result = hook.generate_structured("summary", "You summarise.", "Summarise.", logical_date=DATE)
    assert isinstance(result.value, SummaryReply) and result.value.summary == "A calm day."
    [request] = server.message_requests
    assert request.body["model"] == "claude-haiku-4-5"
    assert request.body["tool_choice"] == {"type": "auto"}
    assert request.body["system"] == "You summarise."


def test_model_routing_from_connection_extras_and_argument(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, models={"design": "claude-sonnet-5-5"})
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    call_design(hook, [])
    call_design(hook, [], model="claude-haiku-4-5")
    first, second = server.message_requests
    assert first.body["model"] == "claude-sonnet-5-5"
    # Sonnet 5.5 rejects forced tool use: the hook falls back to auto
    assert first.body["tool_choice"] == {"type": "auto"}
    assert second.body["model"] == "claude-haiku-4-5"
    assert second.body["tool_choice"] == {"type": "tool", "name": "submit_strategies"}


def test_json_schema_output_mode(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, structured_output="json_schema")
    server.push_text(json.dumps(VALID_DESIGN))
    result = call_design(hook, [])
    assert result.value.strategies[0].name == "vol_breakout"
    [request] = server.message_requests
    assert "tools" not in request.body and "tool_choice" not in request.body
    fmt = request.body["output_config"]["format"]
    assert fmt["type"] == "json_schema" and "strategies" in fmt["schema"]["properties"]
    assert "exactly one JSON object" in request.body["messages"][0]["content"]


def test_429_with_retry_after_is_retried_by_the_sdk(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(429, "slow down", retry_after=0.01)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    rows: list[dict] = []
    result = call_design(hook, rows)
    assert result.value.strategies[0].name == "vol_breakout"
    first, second = server.message_requests
    assert first.headers["x-stainless-retry-count"] == "0"
    assert second.headers["x-stainless-retry-count"] == "1"
    assert first.body == second.body
    assert [r["status"] for r in rows] == ["ok"]


def test_529_overloaded_then_success(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(529, "Overloaded", retry_after_ms=5)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    assert call_design(hook, []).value.strategies[0].category == "breakout"
    assert len(server.message_requests) == 2


def test_500_three_times_gives_llm_error_with_status_and_request_id(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    for _ in range(3):
        server.push_error(500, "Internal server error", retry_after_ms=1)
    rows: list[dict] = []
    with pytest.raises(LLMError) as info:
        call_design(hook, rows)
    assert type(info.value) is LLMError
    message = str(info.value)
    assert "HTTP 500 (api_error)" in message and "'design'" in message and "claude-opus-5" in message
    assert "request id req_fake" in message
    assert len(server.message_requests) == 3  # first try + max_retries=2, no extra loop
    [row] = rows
    assert row["status"] == "error" and row["usd"] == 0.0 and row["request_id"].startswith("req_")


def test_client_error_is_not_retried(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(400, "tool_choice forced tool use is not supported for this model")
    with pytest.raises(LLMError, match="HTTP 400 \\(invalid_request_error\\)"):
        call_design(hook, [])
    assert len(server.message_requests) == 1


def test_malformed_http_body_is_a_response_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_raw(b'{"id": "msg_1", "type": "message", "content": [{"type": "te')
    rows: list[dict] = []
    with pytest.raises(LLMResponseError, match="malformed"):
        call_design(hook, rows)
    assert len(server.message_requests) == 1
    assert [r["status"] for r in rows] == ["error"]


def test_reply_that_is_not_json_is_retried_once_then_rejected(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, tool_choice="auto")
    server.push_text("Here are some ideas: buy low, sell high.")
    server.push_text("Still prose, sorry.")
    with pytest.raises(LLMResponseError, match="still invalid after one retry.*not valid JSON"):
        call_design(hook, [])
    retry = server.message_requests[1].body["messages"]
    assert retry[1] == {"role": "assistant", "content": [{"type": "text", "text": "Here are some ideas: buy low, sell high."}]}
    assert retry[2]["role"] == "user" and "not valid JSON" in retry[2]["content"]


def test_schema_breaking_reply_is_retried_with_the_validation_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_tool_use("submit_strategies", BROKEN_DESIGN, usage=USAGE)
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
    rows: list[dict] = []
    result = call_design(hook, rows)
    assert result.value.strategies[0].name == "vol_breakout"
    assert [r["status"] for r in rows] == ["invalid", "ok"]
    assert result.usd == pytest.approx(2 * USAGE_USD_OPUS)  # the failed attempt is paid too

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


def test_twice_broken_reply_raises_response_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_tool_use("submit_strategies", BROKEN_DESIGN)
    server.push_tool_use("submit_strategies", {"strategies": [{"name": "ok_name", "category": "arbitrage",
                                                                "rationale": "r", "code": CODE}]})
    rows: list[dict] = []
    with pytest.raises(LLMResponseError) as info:
        call_design(hook, rows)
    assert "still invalid after one retry" in str(info.value)
    assert "strategies[0].category: category 'arbitrage'" in str(info.value)
    assert len(server.message_requests) == 2
    assert [r["status"] for r in rows] == ["invalid", "invalid"]
    assert server.pending == 0


def test_tune_out_of_bounds_params_retried_via_run_step(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    context = {"candidates": [{"name": "ema_cross", "category": "trend", "params": {"fast": 12},
                               "param_space": {"fast": [5, 50]}, "metrics": {"sharpe": -0.2}, "code": CODE}]}
    bad = {"proposals": [{"strategy": "ema_cross", "params": {"fast": 80}, "rationale": "r", "diagnosis": "d"}]}
    good = {"proposals": [{"strategy": "ema_cross", "params": {"fast": 30}, "rationale": "r", "diagnosis": "d"}]}
    server.push_tool_use("submit_tuning", bad)
    server.push_tool_use("submit_tuning", good)
    result = hook.run_step("tune", context, logical_date=DATE)
    assert isinstance(result.value, TuneReply) and result.value.proposals[0].params == {"fast": 30}
    first, second = server.message_requests
    assert first.body["model"] == "claude-sonnet-5"
    assert "'fast'=80 is outside [5, 50]" in second.body["messages"][2]["content"][0]["content"]


def test_budget_exhausted_stops_before_any_request(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    rows: list[dict] = []
    with pytest.raises(LLMBudgetExceeded, match=r"\$5\.0000 of \$5\.00"):
        call_design(hook, rows, spent_today=lambda: 5.0, budget_usd=5.0)
    assert server.message_requests == []
    assert rows == []


def test_budget_from_connection_extra_and_spent_during_the_call(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, daily_budget_usd=0.2)
    server.push_tool_use("submit_strategies", BROKEN_DESIGN, usage=USAGE)  # costs 0.1425
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    rows: list[dict] = []
    # 0.1 spent before + 0.1425 for the invalid attempt > 0.2: the retry is not sent
    with pytest.raises(LLMBudgetExceeded):
        call_design(hook, rows, spent_today=lambda: 0.1)
    assert len(server.message_requests) == 1
    assert [r["status"] for r in rows] == ["invalid"]


def test_api_key_never_in_logs_rows_errors_or_repr(monkeypatch, server, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)
    hook = connect(monkeypatch, server)
    server.push_error(429, retry_after_ms=1)
    server.push_tool_use("submit_strategies", BROKEN_DESIGN)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    rows: list[dict] = []
    call_design(hook, rows)
    for _ in range(3):
        server.push_error(503, retry_after_ms=1)
    with pytest.raises(LLMError) as info:
        call_design(hook, rows)
    assert server.message_requests[0].api_key == API_KEY  # it was sent, to the server only
    # stdlib records (SDK, httpx) reach caplog; the hook's structlog output goes to the streams
    out, err = capfd.readouterr()
    texts = [record.getMessage() for record in caplog.records] + [caplog.text, out, err]
    joined = "\n".join(texts)
    assert "LLM design attempt 2" in joined  # the hook's own records were captured
    assert "HTTP Request: POST" in joined  # and the SDK's transport records
    assert not any(API_KEY in t for t in texts)
    assert API_KEY not in json.dumps(rows)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    assert API_KEY not in repr(hook)
    assert len(rows) == 3


def test_connection_available(monkeypatch, server) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", raising=False)
    assert BlofinLLMHook.connection_available() is False
    connect(monkeypatch, server)
    assert BlofinLLMHook.connection_available() is True
    assert BlofinLLMHook.connection_available("no_such_connection") is False


def test_test_connection(monkeypatch, server) -> None:
    assert connect(monkeypatch, server).test_connection() == (True, "Connection established!")
    conn = {"conn_type": "anthropic", "password": "sk-wrong-key-987654321", "host": server.base_url,
            "extra": {"anthropic_client_kwargs": {"max_retries": 0}}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    ok, message = BlofinLLMHook().test_connection()
    assert ok is False and "401" in message and "sk-wrong-key-987654321" not in message


def test_auto_mode_runs_every_step_with_cache_reads(monkeypatch) -> None:
    with FakeAnthropicServer(auto=True, api_key=API_KEY) as fake:
        hook = connect(monkeypatch, fake)
        rows: list[dict] = []
        context = {"portfolio": {"strategies": [{"name": "ema_cross", "category": "trend"}]},
                   "regimes": {"BTC-USDT": {"trend": "up", "volatility": "high"}}, "n_strategies": 3}
        designed = hook.run_step("design", context, logical_date=DATE, usage_sink=rows.append)
        assert len(designed.value.strategies) == 3
        assert len({s.name for s in designed.value.strategies}) == 3
        again = hook.run_step("design", context, logical_date=DATE, usage_sink=rows.append)
        assert {s.name for s in again.value.strategies}.isdisjoint(s.name for s in designed.value.strategies)
        tuned = hook.run_step("tune", {**context, "candidates": [
            {"name": "ema_cross", "category": "trend", "params": {"fast": 12, "slow": 26},
             "param_space": {"fast": [5, 50], "slow": [20, 200]}, "metrics": {"sharpe": -0.1}}]},
            logical_date=DATE, usage_sink=rows.append)
        assert tuned.value.proposals[0].params == {"fast": 28, "slow": 110}
        review = hook.run_step("review", {**context, "report": {"leaderboard": [{"name": "ema_cross"}]}},
                               logical_date=DATE, usage_sink=rows.append)
        assert review.value.recommendations
        summary = hook.run_step("summary", {"report": {"leaderboard": [{"name": "ema_cross"}]}},
                                logical_date=DATE, usage_sink=rows.append)
        assert summary.value.summary
    assert [r["step"] for r in rows] == ["design", "design", "tune", "review", "summary"]
    assert [r["model"] for r in rows] == ["claude-opus-5", "claude-opus-5", "claude-sonnet-5",
                                          "claude-opus-5", "claude-haiku-4-5"]
    assert rows[0]["cache_creation_tokens"] > 0 and rows[0]["cache_read_tokens"] == 0
    assert rows[1]["cache_read_tokens"] == rows[0]["cache_creation_tokens"]  # same prefix, read from cache
    assert all(r["status"] == "ok" and r["usd"] > 0 for r in rows)


def test_caller_for_run_persists_usage_and_enforces_the_daily_budget(monkeypatch, server, tmp_path) -> None:
    from blofin_pipeline.config import PipelineConfig, RunContext
    from blofin_pipeline.store import open_store

    hook = connect(monkeypatch, server)
    db_url = f"sqlite:///{tmp_path / 'blofin.db'}"
    ctx = RunContext.create(logical_date="2026-11-24T00:00:00+00:00", data_end=None,
                            config=PipelineConfig(llm_budget_usd=0.2), db_url=db_url, workspace=tmp_path)
    llm = hook.caller_for(ctx, "design_strategies")
    system, user = design_prompt()
    for _ in range(3):
        server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)  # $0.1425 each

    first = llm("design", system, user, DesignReply)
    assert first.value.strategies[0].name == "vol_breakout"
    llm("design", system, user, DesignReply)  # $0.1425 spent < $0.20: allowed
    with pytest.raises(LLMBudgetExceeded, match=r"\$0\.2850 of \$0\.20"):
        llm("design", system, user, DesignReply)
    assert len(server.message_requests) == 2

    with open_store(db_url) as store:
        rows = store.query("SELECT * FROM llm_usage ORDER BY created_at, call_id")
    assert len(rows) == 2
    assert {r["run_date"] for r in rows} == {"2026-11-24"}
    assert all(r["step"] == "design" and r["status"] == "ok" and r["model"] == "claude-opus-5" for r in rows)
    assert sum(r["usd"] for r in rows) == pytest.approx(2 * USAGE_USD_OPUS)
    assert all(r["call_id"].startswith("req_") for r in rows)
    assert API_KEY not in json.dumps(rows)


def test_caller_for_with_explicit_callbacks(monkeypatch, server, tmp_path) -> None:
    from blofin_pipeline.config import PipelineConfig, RunContext

    hook = connect(monkeypatch, server)
    ctx = RunContext.create(logical_date="2026-11-25", data_end=None, config=PipelineConfig(llm_budget_usd=1.0),
                            db_url=f"sqlite:///{tmp_path / 'unused.db'}", workspace=tmp_path)
    rows: list[dict] = []
    llm = hook.caller_for(ctx, usage_sink=rows.append, spent_today=lambda: 1.0)
    with pytest.raises(LLMBudgetExceeded):
        llm("summary", "s", "u", SummaryReply)
    server.push_text(json.dumps({"summary": "ok"}))
    llm = hook.caller_for(ctx, usage_sink=rows.append, spent_today=lambda: 0.0)
    assert llm("summary", "s", "u", SummaryReply).value.summary == "ok"
    assert [(r["logical_date"], r["step"]) for r in rows] == [("2026-11-25", "summary")]
    assert not (tmp_path / "unused.db").exists()


def test_timeout_gives_llm_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, anthropic_client_kwargs={"max_retries": 0, "timeout": 0.2})
    server.push_slow(0.6)
    rows: list[dict] = []
    with pytest.raises(LLMError, match="'summary'.*timed out"):
        hook.generate_structured("summary", "s", "u", usage_sink=rows.append, logical_date=DATE)
    assert [r["status"] for r in rows] == ["error"]


def test_unreachable_server_gives_llm_error(monkeypatch) -> None:
    with FakeAnthropicServer() as gone:
        url = gone.base_url
    conn = {"conn_type": "anthropic", "password": API_KEY, "host": url,
            "extra": {"anthropic_client_kwargs": {"max_retries": 0, "timeout": 2}}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    with pytest.raises(LLMError, match="could not reach the Anthropic API") as info:
        BlofinLLMHook().generate_structured("summary", "s", "u")
    assert API_KEY not in str(info.value)


def test_default_client_options_and_extras(monkeypatch, server) -> None:
    client = connect(monkeypatch, server, anthropic_client_kwargs={}).get_conn()
    assert client.max_retries == 2 and client.timeout == 300.0
    client = connect(monkeypatch, server, anthropic_client_kwargs={"max_retries": 5, "timeout": 30}).get_conn()
    assert client.max_retries == 5 and client.timeout == 30


def test_reply_cut_at_max_tokens_is_retried_with_more_room(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, tool_choice="auto")
    server.push_text('{"strategies": [{"name": "vol_breakout", "category": "breakout", "ratio', stop_reason="max_tokens")
    server.push_text(json.dumps(VALID_DESIGN))
    result = call_design(hook, [], max_tokens=3000)
    assert result.value.strategies[0].name == "vol_breakout"
    first, second = server.message_requests
    assert (first.body["max_tokens"], second.body["max_tokens"]) == (3000, 6000)
    assert "max_tokens" in second.body["messages"][2]["content"]
