"""Prompt builders (cache_control on the big context) and the budget / usage rows."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline.exceptions import ConfigError, LLMBudgetExceeded
from blofin_pipeline.llm.budget import USAGE_FIELDS, build_usage_row, check_budget
from blofin_pipeline.llm.prompts import (
    STRATEGY_CONTRACT,
    build_design_prompt,
    build_review_prompt,
    build_tune_prompt,
    validation_feedback,
)

CONTEXT = {
    "portfolio": {"strategies": [{"name": "ema_cross", "category": "trend"}],
                  "gaps": [{"category": "breakout", "regime": "range", "symbol": "ETH-USDT"}]},
    "regimes": {"BTC-USDT": {"trend": "up", "volatility": "high"},
                "ETH-USDT": {"trend": "range", "volatility": "low"}},
    "top_performers": [{"name": "ema_cross", "category": "trend", "metrics": {"sharpe": 1.4},
                        "params": {"fast": 12}, "code": "class EmaCross: ..."}],
    "bottom_performers": [{"name": "rsi_fade", "category": "mean_reversion", "metrics": {"sharpe": -0.8},
                           "params": {"window": 14}, "code": "x = 1\n" * 3000}],
    "rejected": [{"name": "peek_ahead", "reasons": ["lookahead: signal changes when future bars change"]}],
}

TUNE = {**CONTEXT, "candidates": [{"name": "rsi_fade", "category": "mean_reversion",
                                   "params": {"window": 14}, "param_space": {"window": [5, 50]},
                                   "metrics": {"sharpe": -0.8}, "diagnosis": ["overtrading"], "code": "c"}]}
REPORT = {**CONTEXT, "report": {"date": "2026-11-24", "leaderboard": [{"name": "ema_cross", "score": 0.9}]}}


def cached(blocks: list[dict]) -> list[str]:
    return [b["text"] for b in blocks if b.get("cache_control") == {"type": "ephemeral"}]


def test_design_prompt_caches_contract_and_market_context() -> None:
    prompt = build_design_prompt(CONTEXT)
    assert all(b["type"] == "text" for b in prompt.system)
    assert "cache_control" not in prompt.system[0]  # short step instruction
    big = cached(prompt.system)
    assert len(big) == 2
    assert STRATEGY_CONTRACT in big[0]
    assert '"ETH-USDT"' in big[1] and '"volatility": "low"' in big[1]  # regime per symbol
    assert "ema_cross" in big[1] and "rsi_fade" in big[1]  # performers
    assert "Design 3 new strategies" in prompt.user
    assert "peek_ahead" in prompt.user and "lookahead" in prompt.user  # knowledge-base feedback
    assert '"symbol": "ETH-USDT"' in prompt.user  # gaps first
    assert "submit_strategies" in prompt.user


def test_long_code_is_cut_with_a_marker() -> None:
    big = cached(build_design_prompt(CONTEXT).system)[1]
    assert "# ... cut:" in big
    assert len(big) < 6000 + 4000


def test_prompt_rendering_is_deterministic_for_the_cache() -> None:
    reordered = dict(reversed(list(CONTEXT.items())))
    reordered["regimes"] = dict(reversed(list(CONTEXT["regimes"].items())))
    assert build_design_prompt(CONTEXT) == build_design_prompt(reordered)


def test_custom_contract_and_n() -> None:
    prompt = build_design_prompt({**CONTEXT, "contract": "MY CONTRACT", "n_strategies": 5})
    assert "MY CONTRACT" in cached(prompt.system)[0]
    assert "Design 5 new strategies" in prompt.user
    with pytest.raises(ConfigError, match="n_strategies"):
        build_design_prompt({"n_strategies": 0})


def test_tune_prompt_lists_candidates_and_caches_context() -> None:
    prompt = build_tune_prompt(TUNE)
    assert len(cached(prompt.system)) == 2
    assert "## rsi_fade (mean_reversion)" in prompt.user
    assert '"param_space"' in prompt.user and "overtrading" in prompt.user
    assert "submit_tuning" in prompt.user
    with pytest.raises(ConfigError, match="candidates"):
        build_tune_prompt(CONTEXT)


def test_review_prompt() -> None:
    review = build_review_prompt(REPORT)
    assert len(cached(review.system)) == 1 and '"BTC-USDT"' in cached(review.system)[0]
    assert '"leaderboard"' in review.user and "submit_review" in review.user
    with pytest.raises(ConfigError, match="report"):
        build_review_prompt(CONTEXT)


def test_bad_context_types_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'regimes' must be a dict"):
        build_design_prompt({"regimes": ["BTC-USDT"]})
    with pytest.raises(ConfigError, match="'rejected' must be a list"):
        build_design_prompt({"rejected": "none"})


def test_validation_feedback_carries_the_error() -> None:
    text = validation_feedback("strategies[0].name: not snake_case")
    assert "strategies[0].name: not snake_case" in text


# --- budget ------------------------------------------------------------------------------
def test_check_budget() -> None:
    check_budget(0.99, 1.0)
    check_budget(100.0, None)
    with pytest.raises(LLMBudgetExceeded, match=r"before step 'design': \$1\.0000 of \$1\.00 used today"):
        check_budget(1.0, 1.0, step="design")
    with pytest.raises(LLMBudgetExceeded):
        check_budget(0.0, 0.0)
    with pytest.raises(ConfigError, match="budget"):
        check_budget(0.0, -1.0)


def test_usage_row() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
             "cache_read_input_tokens": 50_000, "service_tier": "standard"}
    row = build_usage_row(step="design", model="claude-opus-5", usage=usage, latency_ms=1234.6,
                          request_id="req_1", status="ok")
    assert tuple(row) == USAGE_FIELDS
    assert row["usd"] == pytest.approx((1000 * 5 + 2000 * 25 + 10_000 * 6.25 + 50_000 * 0.5) / 1e6)
    assert row["latency_ms"] == 1235 and row["request_id"] == "req_1"
    assert row["cache_creation_tokens"] == 10_000 and row["cache_read_tokens"] == 50_000
    json.dumps(row)  # storable as is
    failed = build_usage_row(step="tune", model="claude-sonnet-5", usage={}, latency_ms=0, request_id=None,
                             status="error")
    assert failed["usd"] == 0.0 and failed["input_tokens"] == 0
    with pytest.raises(ConfigError, match="status"):
        build_usage_row(step="tune", model="claude-sonnet-5", usage={}, latency_ms=0, request_id=None,
                        status="weird")
