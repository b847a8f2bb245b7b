"""The day's shared prefix (one cached head for design, tune and review) and the step prompts."""
from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.prefix import STRATEGY_CONTRACT, build_day_prefix, rounded
from blofin_pipeline.llm.prompts import (
    build_design_prompt,
    build_review_prompt,
    build_tune_prompt,
    validation_feedback,
)
from blofin_pipeline.llm.tools import day_tools

RUN = {"run_date": "2026-11-24", "timeframe": "4H", "symbols": ["BTC-USDT", "ETH-USDT"], "fee": 0.0006,
       "slippage": 0.0001, "history_days": 400, "score_window_days": 180, "wf_folds": 4, "synthetic": False}
BRIEFING = {
    "run": RUN,
    "portfolio": {"strategies": [{"name": "ema_cross", "category": "trend", "mean_score": 0.123456789}],
                  "gaps": [{"category": "breakout", "regime": "range", "symbol": "ETH-USDT"}]},
    "regimes": {"BTC-USDT": {"trend": "up", "volatility": "high", "efficiency_ratio": 0.4321987654},
                "ETH-USDT": {"trend": "range", "volatility": "low"}},
    "top_performers": [{"name": "ema_cross", "category": "trend", "metrics": {"sharpe": 1.4},
                        "params": {"fast": 12}, "code": "class EmaCross: ..."}],
    "bottom_performers": [{"name": "rsi_fade", "category": "mean_reversion", "metrics": {"sharpe": -0.8},
                           "params": {"window": 14}, "code": "x = 1\n" * 3000}],
    "archived": [{"date": "2026-11-23", "strategy": "old_one@1", "reason": "rank 31 of 30"}],
    "failed_changes": [{"date": "2026-11-22", "candidate": "peek_ahead@1",
                        "rejected": "lookahead: signal changes when future bars change"}],
}
TOOLS = day_tools(categories=["trend", "breakout"], n_designs=2, tune_targets={"rsi_fade": {"window": [5, 50]}})
CANDIDATES = [{"name": "rsi_fade", "category": "mean_reversion", "params": {"window": 14},
               "param_space": {"window": [5, 50]}, "metrics": {"BTC-USDT": {"sharpe": -0.812345}},
               "diagnosis": ["overtrading"], "span": "the first 70% of each symbol's history", "code": "c"}]


def test_the_prefix_is_one_cached_head_with_every_fact_the_calls_need() -> None:
    prefix = build_day_prefix(BRIEFING, tools=TOOLS)
    marked = [b for b in prefix.system if b.get("cache_control")]
    assert marked == [prefix.system[-1]]  # one breakpoint, at the end of the system
    assert marked[0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    contract, context = prefix.system[1]["text"], prefix.system[2]["text"]
    assert "generate_signals" in contract and "class EmaCrossFast" in contract
    for fact in ("4H candles", "fee 0.0600%", "slippage 0.0100%", "400 days stored", "last 180 days",
                 "score = raw", "dsr (deflated Sharpe)", "BloFin exchange candles"):
        assert fact in contract, fact
    for fact in ('"ETH-USDT"', '"volatility": "low"', "ema_cross", "rsi_fade", "old_one@1", "rank 31 of 30",
                 "peek_ahead@1", "lookahead"):
        assert fact in context, fact
    assert "0.4322" in context and "0.4321987654" not in context  # numbers rounded
    assert "# ... cut:" in context  # long code cut with a marker
    assert prefix.tools == TOOLS
    assert build_day_prefix(BRIEFING, ttl="1h").system[-1]["cache_control"]["ttl"] == "1h"


def test_design_tune_and_review_share_the_prefix_byte_for_byte() -> None:
    prefix = build_day_prefix(BRIEFING, tools=TOOLS)
    design = build_design_prompt({"n_strategies": 2, "portfolio": BRIEFING["portfolio"]}, prefix)
    tune = build_tune_prompt({"candidates": CANDIDATES}, prefix)
    review = build_review_prompt({"report": {"date": "2026-11-24", "leaderboard": [{"name": "x"}]}}, prefix)
    assert design.system == tune.system == review.system == prefix.system
    assert design.tools is tune.tools is review.tools is TOOLS
    assert "design 2 new strategies" in design.user and '"symbol": "ETH-USDT"' in design.user
    assert "submit_strategies" in design.user and "class attributes `name`" in design.user
    assert "## rsi_fade (mean_reversion)" in tune.user and "measured on the first 70%" in tune.user
    assert '"param_space"' in tune.user and "-0.8123" in tune.user and "-0.812345" not in tune.user
    assert "submit_tuning" in tune.user
    assert '"leaderboard"' in review.user and "submit_review" in review.user


def test_prompt_rendering_is_deterministic_for_the_cache() -> None:
    reordered = dict(reversed(list(BRIEFING.items())))
    reordered["regimes"] = dict(reversed(list(BRIEFING["regimes"].items())))
    assert build_day_prefix(BRIEFING) == build_day_prefix(reordered)


def test_without_a_prefix_the_context_makes_one() -> None:
    prompt = build_design_prompt({**BRIEFING, "n_strategies": 5, "rejected": [{"name": "bad_one"}],
                                  "failed_changes": None})
    assert STRATEGY_CONTRACT.splitlines()[0] in prompt.system[1]["text"]
    assert "bad_one" in prompt.system[2]["text"] and prompt.tools is None
    assert "design 5 new strategies" in prompt.user
    assert "MY CONTRACT" in build_design_prompt({"contract": "MY CONTRACT"}).system[1]["text"]


def test_bad_contexts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_strategies"):
        build_design_prompt({"n_strategies": 0})
    with pytest.raises(ConfigError, match="candidates"):
        build_tune_prompt(BRIEFING)
    with pytest.raises(ConfigError, match="report"):
        build_review_prompt(BRIEFING)
    with pytest.raises(ConfigError, match="'regimes' must be a dict"):
        build_design_prompt({"regimes": ["BTC-USDT"]})
    with pytest.raises(ConfigError, match="'archived' must be a list"):
        build_design_prompt({"archived": "none"})


def test_rounded_keeps_four_significant_digits_and_drops_nan() -> None:
    assert rounded({"a": 0.000123456, "b": [1234.5678, float("nan")], "c": 3, "d": True}) == \
        {"a": 0.0001235, "b": [1235.0, None], "c": 3, "d": True}


def test_validation_feedback_carries_the_error() -> None:
    assert "strategies[0].name: not snake_case" in validation_feedback("strategies[0].name: not snake_case")
