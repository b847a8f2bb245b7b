"""BlofinLLMHook through the real anthropic SDK against a local fake Messages API server.

The connection comes from `AIRFLOW_CONN_ANTHROPIC_DEFAULT` (JSON form) whose host is the
fake server, so the SDK's HTTP code, retries and `retry-after` handling all run for real.
Retry waits are kept tiny with `retry-after-ms` / fractional `retry-after` headers. The
hook transports and reads the connection; the policy on top of it is tested in
tests/llm/test_llm_policy.py, and once here with the hook underneath.
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

from blofin_pipeline.exceptions import ConfigError, LLMError, LLMResponseError  # noqa: E402
from blofin_pipeline.llm.policy import StructuredCaller  # noqa: E402
from blofin_pipeline.llm.prompts import build_design_prompt  # noqa: E402
from blofin_pipeline.llm.schemas import DesignReply  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropicServer  # noqa: E402
from tests.fakes.llm import BROKEN_DESIGN, VALID_DESIGN, MemoryLedger  # noqa: E402

API_KEY = "sk-test-5ecret-key-0123456789"
REQUEST = {"model": "claude-opus-5", "max_tokens": 100, "system": "You design.",
           "messages": [{"role": "user", "content": "Design one."}]}


@pytest.fixture
def server():
    with FakeAnthropicServer(api_key=API_KEY) as fake:
        yield fake


def connect(monkeypatch: pytest.MonkeyPatch, server: FakeAnthropicServer, **extra: Any) -> BlofinLLMHook:
    extra.setdefault("anthropic_client_kwargs", {"max_retries": 2, "timeout": 20})
    conn = {"conn_type": "anthropic", "password": API_KEY, "host": server.base_url, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return BlofinLLMHook()


def test_create_message_sends_the_request_with_the_key(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_text("hello")
    message = hook.create_message(**REQUEST)
    assert message.content[0].text == "hello"
    assert message._request_id.startswith("req_")
    [request] = server.message_requests
    assert request.api_key == API_KEY
    assert {k: request.body[k] for k in REQUEST} == REQUEST


def test_429_with_retry_after_is_retried_by_the_sdk(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(429, "slow down", retry_after=0.01)
    server.push_text("ok")
    assert hook.create_message(**REQUEST).content[0].text == "ok"
    first, second = server.message_requests
    assert first.headers["x-stainless-retry-count"] == "0"
    assert second.headers["x-stainless-retry-count"] == "1"
    assert first.body == second.body


def test_529_overloaded_then_success(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(529, "Overloaded", retry_after_ms=5)
    server.push_text("ok")
    assert hook.create_message(**REQUEST).content[0].text == "ok"
    assert len(server.message_requests) == 2


def test_500_three_times_gives_llm_error_with_status_and_request_id(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    for _ in range(3):
        server.push_error(500, "Internal server error", retry_after_ms=1)
    with pytest.raises(LLMError) as info:
        hook.create_message(**REQUEST)
    assert type(info.value) is LLMError
    message = str(info.value)
    assert "HTTP 500 (api_error)" in message and "claude-opus-5" in message
    assert "request id req_fake" in message and info.value.request_id.startswith("req_fake")
    assert len(server.message_requests) == 3  # first try + max_retries=2, no extra loop


def test_client_error_is_not_retried(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(400, "tool_choice forced tool use is not supported for this model")
    with pytest.raises(LLMError, match="HTTP 400 \\(invalid_request_error\\)"):
        hook.create_message(**REQUEST)
    assert len(server.message_requests) == 1


def test_malformed_http_body_is_a_response_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    server.push_raw(b'{"id": "msg_1", "type": "message", "content": [{"type": "te')
    with pytest.raises(LLMResponseError, match="malformed"):
        hook.create_message(**REQUEST)
    assert len(server.message_requests) == 1


def test_timeout_gives_llm_error(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, anthropic_client_kwargs={"max_retries": 0, "timeout": 0.2})
    server.push_slow(0.6)
    with pytest.raises(LLMError, match="'claude-opus-5' timed out"):
        hook.create_message(**REQUEST)


def test_unreachable_server_gives_llm_error(monkeypatch) -> None:
    with FakeAnthropicServer() as gone:
        url = gone.base_url
    conn = {"conn_type": "anthropic", "password": API_KEY, "host": url,
            "extra": {"anthropic_client_kwargs": {"max_retries": 0, "timeout": 2}}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    with pytest.raises(LLMError, match="could not reach the Anthropic API") as info:
        BlofinLLMHook().create_message(**REQUEST)
    assert API_KEY not in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
def test_the_sdks_retries_are_reported_on_the_message_streamed_or_not(monkeypatch, server, stream) -> None:
    hook = connect(monkeypatch, server)
    server.push_error(529, retry_after_ms=1)
    server.push_error(429, retry_after_ms=1)
    server.push_tool_use("submit_strategies", VALID_DESIGN, usage={"input_tokens": 7, "output_tokens": 9})
    message = hook.create_message(**REQUEST, stream=stream, tools=[{"name": "submit_strategies",
                                                                    "input_schema": {"type": "object"}}])
    assert message.http_retries == 2 and message._request_id.startswith("req_")
    assert message.content[0].input == VALID_DESIGN and message.usage.output_tokens == 9
    assert [r.body.get("stream", False) for r in server.message_requests] == [stream] * 3


def test_message_batches_through_the_hook(monkeypatch) -> None:
    with FakeAnthropicServer(api_key=API_KEY, batch_delay_s=0.3) as server:
        server.push_text("first")
        hook = connect(monkeypatch, server)
        batch_id = hook.submit_batch([{"custom_id": "att_1", "params": REQUEST},
                                      {"custom_id": "att_2", "params": REQUEST}])
        assert hook.batch_status(batch_id) == "in_progress"
        while hook.batch_status(batch_id) != "ended":
            pass
        results = hook.batch_results(batch_id)
        other = hook.submit_batch([{"custom_id": "att_3", "params": REQUEST}])
        hook.cancel_batch(other)
        assert hook.batch_status(other) == "ended" and hook.batch_results(other)["att_3"] == {"type": "canceled"}
    assert results["att_1"]["type"] == "succeeded" and results["att_1"]["message"]["content"][0]["text"] == "first"
    assert results["att_2"]["type"] == "errored"  # nothing scripted for it: the API error comes back per request
    assert results["att_2"]["error"]["error"]["type"] == "api_error"


def test_default_client_options_and_extras(monkeypatch, server) -> None:
    client = connect(monkeypatch, server, anthropic_client_kwargs={}).get_conn()
    assert client.max_retries == 2 and client.timeout == 300.0
    client = connect(monkeypatch, server, anthropic_client_kwargs={"max_retries": 5, "timeout": 30}).get_conn()
    assert client.max_retries == 5 and client.timeout == 30


def test_client_is_built_once_on_first_use(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server)
    assert "conn" not in vars(hook)
    assert hook.conn is hook.conn


def test_settings_come_from_the_connection_extras(monkeypatch, server) -> None:
    hook = connect(monkeypatch, server, models={"design": "claude-sonnet-5-5"}, max_tokens={"tune": 3000},
                   structured_output="json_schema", tool_choice="auto")
    settings = hook.settings
    assert settings.model_for("design") == "claude-sonnet-5-5" and settings.model_for("review") == "claude-opus-5-5"
    assert settings.max_tokens_for("tune") == 3000
    assert (settings.structured_output, settings.tool_choice) == ("json_schema", "auto")
    with pytest.raises(ConfigError, match="connection 'anthropic_default': .*tool_choice 'sometimes'"):
        _ = connect(monkeypatch, server, tool_choice="sometimes").settings


def test_test_connection(monkeypatch, server) -> None:
    assert connect(monkeypatch, server).test_connection() == (True, "Connection established!")
    conn = {"conn_type": "anthropic", "password": "sk-wrong-key-987654321", "host": server.base_url,
            "extra": {"anthropic_client_kwargs": {"max_retries": 0}}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    ok, message = BlofinLLMHook().test_connection()
    assert ok is False and "401" in message and "sk-wrong-key-987654321" not in message


def test_api_key_never_in_logs_rows_errors_or_repr(monkeypatch, server, caplog, capfd) -> None:
    """The policy on the hook: SDK retry, validation retry, then a failure after retries."""
    caplog.set_level(logging.DEBUG)
    hook = connect(monkeypatch, server)
    ledger = MemoryLedger()
    llm = StructuredCaller(hook.create_message, ledger, settings=hook.settings)
    prompt = build_design_prompt({"n_strategies": 1})
    server.push_error(429, retry_after_ms=1)
    server.push_tool_use("submit_strategies", BROKEN_DESIGN)
    server.push_tool_use("submit_strategies", VALID_DESIGN)
    assert llm("design", prompt, DesignReply).strategies[0].name == "vol_breakout"
    for _ in range(3):
        server.push_error(503, retry_after_ms=1)
    with pytest.raises(LLMError) as info:
        llm("design", prompt, DesignReply)
    assert "step 'design': Anthropic API answered HTTP 503" in str(info.value)
    assert server.message_requests[0].api_key == API_KEY  # it was sent, to the server only
    out, err = capfd.readouterr()
    texts = [record.getMessage() for record in caplog.records] + [caplog.text, out, err]
    joined = "\n".join(texts)
    assert "LLM design attempt 2" in joined  # the policy's own records were captured
    assert "HTTP Request: POST" in joined  # and the SDK's transport records
    assert not any(API_KEY in t for t in texts)
    assert [r["status"] for r in ledger.rows] == ["invalid", "ok", "error"]
    assert API_KEY not in json.dumps(ledger.rows)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    assert API_KEY not in repr(hook) and API_KEY not in repr(llm)
