"""A step's LLM caller: the connection's transport and settings, the run's budget, usage rows
in the step's data database. Real HTTP: the SDK against the local fake Messages API."""
from __future__ import annotations

import json

import anthropic
import pytest

from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import LLMBudgetExceeded
from blofin_pipeline.llm.prompts import build_design_prompt
from blofin_pipeline.llm.schemas import DesignReply
from blofin_pipeline.llm.settings import LLMSettings
from blofin_pipeline.steps.runner import llm_caller
from blofin_pipeline.store import open_store
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.llm import VALID_DESIGN

API_KEY = "sk-test-step-key"
USAGE = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
         "cache_read_input_tokens": 50_000}  # $0.1425 on claude-opus-5


class SDKConnection:
    """An `LLMConnection` without Airflow: the SDK client's `messages.create` and settings."""

    def __init__(self, base_url: str, settings: LLMSettings) -> None:
        self.settings = settings
        self.create_message = anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0).messages.create


def test_offline_has_no_caller(tmp_path):
    ctx = RunContext.create(logical_date="2026-11-24", data_end=None, config=PipelineConfig(),
                            db_url=f"sqlite:///{tmp_path / 'unused.db'}", workspace=tmp_path)
    assert llm_caller(None, ctx, store=None) is None


def test_usage_is_persisted_and_the_daily_budget_stops_the_third_call(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'blofin.db'}"
    ctx = RunContext.create(logical_date="2026-11-24T00:00:00+00:00", data_end=None,
                            config=PipelineConfig(llm_budget_usd=0.2), db_url=db_url, workspace=tmp_path)
    prompt = build_design_prompt({"n_strategies": 1})
    with FakeAnthropicServer(api_key=API_KEY) as server, open_store(db_url) as store:
        for _ in range(3):
            server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
        llm = llm_caller(SDKConnection(server.base_url, LLMSettings(models={"design": "claude-opus-5"})), ctx, store)
        assert llm("design", prompt, DesignReply).strategies[0].name == "vol_breakout"
        llm("design", prompt, DesignReply)  # $0.1425 spent < $0.20: allowed
        with pytest.raises(LLMBudgetExceeded, match=r"\$0\.2850 of \$0\.20"):
            llm("design", prompt, DesignReply)
        assert len(server.message_requests) == 2
        rows = store.query("SELECT * FROM llm_usage ORDER BY created_at, call_id")
    assert len(rows) == 2
    assert {r["run_date"] for r in rows} == {"2026-11-24"}
    assert all(r["step"] == "design" and r["status"] == "ok" and r["model"] == "claude-opus-5" for r in rows)
    assert sum(r["usd"] for r in rows) == pytest.approx(2 * 0.1425)
    assert all(r["call_id"].startswith("req_") for r in rows)
    assert API_KEY not in json.dumps(rows)
