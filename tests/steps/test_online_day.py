"""Whole online days in-process against the fake Messages API over real HTTP (the SDK, the
policy, the ledger in the data database): schema-valid random answers accepted, every
attempt counted, the cache hit, an outage survived, batch mode."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.llm.settings import BatchSettings, LLMSettings
from blofin_pipeline.store import open_store
from blofin_pipeline.store.usage import attempts_on
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.llm import SDKConnection

DAY = "2026-04-10"
SETTINGS = dict(symbols=("BTC-USDT", "ETH-USDT"), history_days=120, score_window_days=90,
                wf_train_days=45, n_designs=3, n_tunes=3,
                tune_trials=6, top_strategies=12, ml_enabled=False)


def make_ctx(tmp_path, **cfg) -> RunContext:
    return RunContext.create(logical_date=DAY, data_end=DAY, config=PipelineConfig(**{**SETTINGS, **cfg}),
                             db_url=f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}", workspace=tmp_path)


def day_rows(ctx: RunContext) -> tuple[list[dict], dict, dict]:
    with open_store(ctx.db_url) as store:
        usage = attempts_on(store, DAY)
        report = json.loads(store.scalar("SELECT report FROM daily_reports WHERE run_date = :d", {"d": DAY}))
        steps_log = {r["step"]: r["status"] for r in store.query("SELECT step, status FROM pipeline_runs")}
    return usage, report, steps_log


@pytest.mark.slow
def test_schema_valid_random_answers_give_accepted_designs_and_tunes_and_every_attempt_is_counted(tmp_path):
    """Every answer validates; a design is accepted once its file is reconciled with the reply. A
    tuned version is registered only when it beats its parent on held-out data, which random
    parameters do for some draws only (4 of seeds 1-6): seed 3 is one of them."""
    ctx = make_ctx(tmp_path)
    with FakeAnthropicServer(schema=True, seed=3, fixed_request_id="req_repeated") as server:
        server.push_error(529, retry_after_ms=5)
        server.push_error(429, retry_after_ms=5)
        out = steps.run_all(ctx, llm=SDKConnection(server.base_url, LLMSettings(), max_retries=2))
        answered = [r for r in server.message_requests]
    accepted = set(out["backtest_candidates"]["accepted"])
    assert accepted & set(out["design_strategies"]["designed"]), out["backtest_candidates"]
    assert accepted & set(out["tune_strategies"]["tuned"]), (out["tune_strategies"], out["backtest_candidates"])
    assert out["check_run"]["research"] == {"design_strategies": "success", "tune_strategies": "success",
                                            "train_ml_models": "success"}
    usage, report, steps_log = day_rows(ctx)
    # The server gave every answer the same request id: still one row per attempt.
    assert len(usage) == len(answered) - 2 and {u["request_id"] for u in usage} == {"req_repeated"}
    assert sum(u["http_retries"] for u in usage) == 2  # the 529 and the 429, retried by the SDK
    assert [u["step"] for u in usage][-1] == "review" and all(u["status"] != "reserved" for u in usage)
    # The report's cost is the whole day's, the review included; every call with its cache figures.
    assert report["llm_usage"]["usd"] == pytest.approx(sum(u["usd"] for u in usage))
    assert [a["step"] for a in report["llm_usage"]["attempts"]] == [u["step"] for u in usage]
    assert report["ai_review"]["mode"] == "llm" and report["summary"]["llm_usd"] == report["llm_usage"]["usd"]
    assert set(steps_log.values()) == {"success"}


@pytest.mark.slow
def test_the_second_and_third_call_of_a_day_read_the_cache(tmp_path):
    ctx = make_ctx(tmp_path, n_tunes=2)
    with FakeAnthropicServer(schema=True, seed=12) as server:
        steps.run_all(ctx, llm=SDKConnection(server.base_url, LLMSettings()))
    usage, report, _ = day_rows(ctx)
    first, second, third = usage[:3]
    assert (first["step"], second["step"], third["step"]) == ("design", "tune", "review")
    assert first["cache_creation_tokens"] > 0 and first["cache_read_tokens"] == 0
    assert second["cache_read_tokens"] > 0 and third["cache_read_tokens"] > 0
    assert report["llm_usage"]["cache_read_tokens"] >= second["cache_read_tokens"] + third["cache_read_tokens"]


@pytest.mark.slow
def test_api_down_gives_the_rule_based_review_with_the_reason_a_failed_run_and_a_complete_report(tmp_path):
    ctx = make_ctx(tmp_path, n_designs=2, n_tunes=1)
    with FakeAnthropicServer(schema=True, down=True) as server:
        out = steps.run_all(ctx, llm=SDKConnection(server.base_url, LLMSettings(), max_retries=1))
    assert "HTTP 529" in out["design_strategies"]["error"] and "HTTP 529" in out["tune_strategies"]["error"]
    assert "research failed on 2026-04-10: design_strategies failed" in out["check_run"]["error"]
    assert "tune_strategies failed" in out["check_run"]["error"]
    usage, report, steps_log = day_rows(ctx)
    review = report["ai_review"]
    assert review["mode"] == "rule-based" and review["fallback_reason"].startswith("LLM API unavailable")
    assert review["recommendations"] and report["leaderboard"]  # the day is still reviewed and ranked
    assert steps_log["check_run"] == "failed" and steps_log["rank_and_update"] == "success"
    assert {u["status"] for u in usage} == {"error"} and sum(u["usd"] for u in usage) == 0.0
    html = (tmp_path / "data" / "reports" / f"{DAY}.html").read_text()
    assert "LLM API unavailable" in html and 'id="llm-usage"' in html


@pytest.mark.slow
def test_batch_mode_end_to_end_at_half_price(tmp_path):
    ctx = make_ctx(tmp_path, n_designs=2, n_tunes=2, llm_batch=True)
    settings = LLMSettings(batch=BatchSettings(timeout_s=20, poll_s=0.05))
    with FakeAnthropicServer(schema=True, seed=13, batch_delay_s=0.2) as server:
        out = steps.run_all(ctx, llm=SDKConnection(server.base_url, settings))
        batches = server.batches.batches
    assert out["design_strategies"]["designed"] and out["check_run"]["research"]["tune_strategies"] == "success"
    assert len(batches) == 2 and all(b.status == "ended" for b in batches)
    usage, report, _ = day_rows(ctx)
    by_step = {u["step"]: u for u in usage if u["attempt"] == 1}
    assert by_step["design"]["mode"] == by_step["tune"]["mode"] == "batch"
    assert by_step["design"]["request_id"] == batches[0].id and by_step["review"]["mode"] == "direct"
    assert all(u["status"] in ("ok", "invalid") for u in usage)
    [design_result] = batches[0].results
    assert design_result["result"]["message"]["usage"]["service_tier"] == "batch"
    # batch mode: the review comes long after the batches wrote the prefix, so it lives an hour
    assert batches[0].requests[0]["params"]["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert by_step["review"]["cache_read_tokens"] > 0
