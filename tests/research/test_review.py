"""The day's review: rule-based (offline) and through a scripted LLM caller."""
from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import LLMBudgetExceeded, LLMError
from blofin_pipeline.llm.schemas import ReviewReply
from blofin_pipeline.research.review import llm_review, review_day, rule_based_review
from tests.fakes.llm import MemoryLedger, ScriptedCaller

SECTIONS = ("summary", "working", "not_working", "risks", "recommendations")


def _day(**extra):
    strategies = [
        {"name": "ema_cross", "category": "trend", "symbol": "BTC-USDT", "score": 1.4, "sharpe": 1.6,
         "total_return": 0.12, "max_drawdown": -0.08, "significant": True},
        {"name": "macd_trend", "category": "trend", "symbol": "ETH-USDT", "score": 1.1, "sharpe": 1.2,
         "total_return": 0.05, "max_drawdown": -0.10},
        {"name": "tsmom", "category": "trend", "symbol": "BTC-USDT", "score": 0.9, "sharpe": 1.0,
         "total_return": 0.04, "max_drawdown": -0.12},
        {"name": "rsi_reversion", "category": "mean_reversion", "symbol": "ETH-USDT", "score": 0.2,
         "sharpe": 0.3, "total_return": 0.01, "max_drawdown": -0.05},
        {"name": "zscore", "category": "mean_reversion", "symbol": "SOL-USDT", "score": 0.1, "sharpe": 0.2},
        {"name": "donchian", "category": "breakout", "symbol": "SOL-USDT", "score": -0.8, "sharpe": -1.1,
         "total_return": -0.2, "max_drawdown": -0.35},
        {"name": "volume_spike", "category": "volume", "symbol": "BTC-USDT", "score": -1.2, "sharpe": -1.5,
         "total_return": -0.3, "max_drawdown": -0.41},
    ]
    day = {"date": "2024-03-01", "synthetic": True, "strategies": strategies, "designed": 3,
           "tuned": ["a", "b"], "archived": 1,
           "rejected": [{"name": "peeker", "reasons": ["lookahead: signal at bar 10 differs"]}],
           "regimes": {"BTC-USDT": {"trend": "range", "volatility": "high"},
                       "ETH-USDT": {"trend": "range", "volatility": "normal"},
                       "SOL-USDT": {"trend": "up", "volatility": "low"}}}
    day.update(extra)
    return day


def test_rule_based_review_has_every_section_and_says_what_it_saw():
    review = rule_based_review(_day())
    assert review["mode"] == "rule-based"
    for key in SECTIONS:
        assert review[key], key
    text = " ".join(review["working"])
    assert "ema_cross" in text and "deflated Sharpe" in text and "3 designed, 2 tuned, 1 archived" in text
    assert any("volume_spike" in item for item in review["not_working"])
    assert any("peeker" in item and "lookahead" in item for item in review["not_working"])
    risks = " ".join(review["risks"])
    assert "concentration" in risks and "trend" in risks       # 3 of the top 5 are trend
    assert "deep drawdown" in risks and "volume_spike" in risks and "donchian" in risks
    assert "BTC-USDT" in risks and "SYNTHETIC" in risks
    recs = " ".join(review["recommendations"])
    assert "mean-reversion" in recs                               # 2 of 3 symbols range
    assert "momentum" in recs and "volatility" in recs            # categories without a strategy
    assert review["facts"]["designed"] == 3 and review["facts"]["tuned"] == 2
    assert any("category trend has the best mean score (1.13" in item for item in review["working"])
    assert any("category volume has the worst mean score (-1.20" in item for item in review["not_working"])


def test_regime_advice_defers_to_out_of_sample_evidence():
    day = _day()
    for row in day["strategies"]:
        if row["category"] == "mean_reversion":
            row["score"] = -0.9
    recs = " ".join(rule_based_review(day)["recommendations"])
    assert "yet mean_reversion strategies lose on average (-0.90)" in recs
    assert "favour mean-reversion" not in recs


def test_rule_based_review_on_an_empty_day_still_reports():
    review = rule_based_review({"date": "2024-03-02"})
    assert review["mode"] == "rule-based"
    assert "no strategy was scored today" in review["not_working"]
    assert all(review[key] for key in SECTIONS)


def test_no_significant_result_is_called_out():
    day = _day()
    for row in day["strategies"]:
        row.pop("significant", None)
    review = rule_based_review(day)
    assert any("not significant" in item or "none of 7" in item for item in review["not_working"])


def test_llm_review_maps_the_reply_and_labels_the_model():
    llm = ScriptedCaller([ReviewReply(summary="Trend leads.", working=["ema_cross"], not_working=["donchian"],
                                      risks=["concentration in trend"], recommendations=["add mean reversion"])])
    review = llm_review(_day(), llm, model="claude-opus-5")
    assert review["mode"] == "llm" and review["model"] == "claude-opus-5"
    assert review["working"] == ["ema_cross"] and review["summary"] == "Trend leads."
    [call] = llm.calls
    assert call.step == "review" and call.reply_type is ReviewReply
    assert "ema_cross" in call.prompt.user and "peeker" in call.prompt.user


def test_review_day_falls_back_to_the_rules_with_the_reason_when_the_llm_review_cannot_be_had():
    assert review_day(_day())["mode"] == "rule-based" and "fallback_reason" not in review_day(_day())
    invalid = review_day(_day(), llm=ScriptedCaller([{"summary": ""}]), model="m")
    assert invalid["mode"] == "rule-based" and invalid["model_asked"] == "m"
    assert invalid["fallback_reason"].startswith("LLM reply invalid: ReviewReply invalid")
    assert invalid["recommendations"] == rule_based_review(_day())["recommendations"]

    def failing(error):
        def call(*args, **kwargs):
            raise error
        return call

    down = review_day(_day(), llm=failing(LLMError("HTTP 529 after the SDK's retries")))
    assert down["fallback_reason"] == "LLM API unavailable: HTTP 529 after the SDK's retries"
    spent = review_day(_day(), llm=failing(LLMBudgetExceeded("daily LLM budget reached")))
    assert spent["fallback_reason"].startswith("LLM budget spent")
    with pytest.raises(ValueError):  # anything that is not an LLM failure still fails the step
        review_day(_day(), llm=failing(ValueError("bug")))


@pytest.mark.slow
def test_design_tune_and_review_through_the_real_hook_and_the_fake_messages_api(monkeypatch):
    """The online path end to end: real SDK, real hook, the policy, local server speaking the wire format."""
    import json
    from pathlib import Path

    import pandas as pd

    pytest.importorskip("airflow")
    from blofin_pipeline.costs import Costs
    from blofin_pipeline.llm.policy import StructuredCaller
    from blofin_pipeline.market.sample import generate_candles
    from blofin_pipeline.research.designer import DesignContext, design
    from blofin_pipeline.research.regime import detect_regimes
    from blofin_pipeline.research.tuner import tune
    from blofin_pipeline.strategies import builtin_strategy_sources
    from tests.fakes.anthropic_server import FakeAnthropicServer

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "plugins"))
    with FakeAnthropicServer(auto=True, api_key="sk-test-key") as server:
        conn = {"conn_type": "anthropic", "password": "sk-test-key", "host": server.base_url,
                "extra": {"anthropic_client_kwargs": {"max_retries": 1, "timeout": 20}}}
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
        from blofin_llm_hook import BlofinLLMHook

        hook = BlofinLLMHook()
        ledger = MemoryLedger()
        llm = StructuredCaller(hook.create_message, ledger, settings=hook.settings, budget_usd=1.0)
        end = pd.Timestamp("2024-06-01", tz="UTC")
        candles = {"BTC-USDT": generate_candles("BTC-USDT", "1H", end - pd.Timedelta(days=60), end)}
        sources = builtin_strategy_sources()
        names = sorted(sources)[:2]
        portfolio = tuple({"name": n, "category": "trend", "scores": {"BTC-USDT": -0.5}, "code": sources[n]}
                          for n in names)
        ctx = DesignContext(run_date="2024-06-01", symbols=("BTC-USDT",), regimes=detect_regimes(candles),
                            strategies=portfolio)
        designed = design(ctx, 2, llm=llm)
        tuned = tune([{"name": n, "code": sources[n], "version": 1} for n in names], candles,
                     llm=llm, costs=Costs(slippage=0.0, timeframe="1H"))
        review = llm_review(_day(), llm, model=llm.model_for("review"))

    assert len(designed) == 2 and all(c.meta["mode"] == "llm" for c in designed)
    assert {t.strategy for t in tuned} == set(names)
    assert all(t.candidate.parent == f"{t.strategy}@1" and t.after_metrics for t in tuned)
    assert review["mode"] == "llm" and review["model"] == "claude-opus-5-5"
    assert [row["step"] for row in ledger.rows] == ["design", "tune", "review"]
    assert [row["model"] for row in ledger.rows] == ["claude-opus-5-5"] * 3
    assert all(row["usd"] > 0 for row in ledger.rows)
