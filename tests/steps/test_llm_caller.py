"""A step's LLM caller: the connection's transport and settings, the run's budget, usage rows
in the step's data database. Real HTTP: the SDK against the local fake Messages API."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import LLMBudgetExceeded
from blofin_pipeline.llm.prompts import build_design_prompt
from blofin_pipeline.llm.schemas import DesignReply
from blofin_pipeline.llm.settings import LLMSettings
from blofin_pipeline.steps.llm_day import llm_caller
from blofin_pipeline.store import open_store
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.llm import VALID_DESIGN, SDKConnection

API_KEY = "sk-test-step-key"
USAGE = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
         "cache_read_input_tokens": 50_000}  # $0.1425 on claude-opus-5


def test_offline_has_no_caller(tmp_path):
    ctx = RunContext.create(logical_date="2026-11-24", data_end=None, config=PipelineConfig(),
                            db_url=f"sqlite:///{tmp_path / 'unused.db'}", workspace=tmp_path)
    assert llm_caller(None, ctx, store=None) is None


def test_usage_is_persisted_and_the_daily_budget_stops_the_third_call(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'blofin.db'}"
    ctx = RunContext.create(logical_date="2026-11-24T00:00:00+00:00", data_end=None,
                            config=PipelineConfig(llm_budget_usd=0.33), db_url=db_url, workspace=tmp_path)
    prompt = build_design_prompt({"n_strategies": 1})
    settings = LLMSettings(models={"design": "claude-opus-5"}, max_tokens={"design": 1000})
    with FakeAnthropicServer(api_key=API_KEY, fixed_request_id="req_same") as server, open_store(db_url) as store:
        for _ in range(3):
            server.push_tool_use("submit_strategies", VALID_DESIGN, usage=USAGE)
        llm = llm_caller(SDKConnection(server.base_url, settings, api_key=API_KEY), ctx, store)
        assert llm("design", prompt, DesignReply).strategies[0].name == "vol_breakout"
        llm("design", prompt, DesignReply)  # $0.1425 spent + < $0.06 worst case < $0.33: allowed
        with pytest.raises(LLMBudgetExceeded, match=r"\$0\.2850 spent or reserved today"):
            llm("design", prompt, DesignReply)
        assert len(server.message_requests) == 2
        rows = store.query("SELECT * FROM llm_usage ORDER BY created_at")
    assert len(rows) == 2  # the server repeated its request id: two rows all the same
    assert {r["run_date"] for r in rows} == {"2026-11-24"} and {r["request_id"] for r in rows} == {"req_same"}
    assert all(r["step"] == "design" and r["status"] == "ok" and r["model"] == "claude-opus-5" for r in rows)
    assert sum(r["usd"] for r in rows) == pytest.approx(2 * 0.1425)
    assert API_KEY not in json.dumps(rows)


def _one_call_in_a_process(db_url: str, base_url: str, budget: float, barrier, results) -> None:
    ctx = RunContext.create(logical_date="2026-11-24", data_end=None, config=PipelineConfig(llm_budget_usd=budget),
                            db_url=db_url, workspace="/tmp")
    settings = LLMSettings(models={"design": "claude-opus-5"}, max_tokens={"design": 2000})
    with open_store(db_url) as store:
        llm = llm_caller(SDKConnection(base_url, settings, api_key=API_KEY), ctx, store)
        barrier.wait()
        try:
            llm("design", build_design_prompt({"n_strategies": 1}), DesignReply)
            results.put("sent")
        except LLMBudgetExceeded:
            results.put("refused")


@pytest.mark.slow
def test_a_budget_just_above_one_worst_case_lets_exactly_one_of_two_parallel_tasks_call(db_url):
    import multiprocessing

    from blofin_pipeline.llm.budget import worst_case_usd
    from blofin_pipeline.llm.policy import build_request

    settings = LLMSettings(models={"design": "claude-opus-5"}, max_tokens={"design": 2000})
    worst = worst_case_usd(build_request(settings, "design", build_design_prompt({"n_strategies": 1}), DesignReply))
    open_store(db_url).close()
    with FakeAnthropicServer(api_key=API_KEY) as server:
        for _ in range(2):
            server.push_tool_use("submit_strategies", VALID_DESIGN, usage={"input_tokens": 2000, "output_tokens": 900})
        mp = multiprocessing.get_context("spawn")
        barrier, results = mp.Barrier(2), mp.Queue()
        tasks = [mp.Process(target=_one_call_in_a_process, args=(db_url, server.base_url, worst * 1.01, barrier,
                                                                  results)) for _ in range(2)]
        for task in tasks:
            task.start()
        for task in tasks:
            task.join(timeout=120)
        outcomes = sorted(results.get(timeout=5) for _ in tasks)
        sent = len(server.message_requests)
    assert outcomes == ["refused", "sent"] and sent == 1
    with open_store(db_url) as store:
        rows = store.query("SELECT status, usd FROM llm_usage")
    assert [r["status"] for r in rows] == ["ok"] and rows[0]["usd"] < worst
