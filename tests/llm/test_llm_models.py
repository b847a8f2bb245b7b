"""Model routing and the price table behind cost_usd."""
from __future__ import annotations

import subprocess
import sys

import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.models import (
    DEFAULT_MODELS,
    ModelPrice,
    cost_usd,
    price_for,
    resolve_model,
    supports_forced_tool_use,
)


def test_default_routing_follows_the_specification() -> None:
    # one model for the day's three calls: they share the cached prefix (a cache is per model)
    assert DEFAULT_MODELS == {"design": "claude-opus-5-5", "review": "claude-opus-5-5", "tune": "claude-opus-5-5"}


def test_the_defaults_are_the_newest_generation_the_pinned_sdk_lists() -> None:
    from typing import get_args

    from anthropic.types.model_param import ModelParam

    listed = [m for m in get_args(get_args(ModelParam)[0])]
    for step, model in DEFAULT_MODELS.items():
        line = model.split("-")[1]
        newest = next(m for m in listed if m.split("-")[1] == line)  # the literal lists newest first
        assert model == newest, (step, model, newest)
        price_for(model)  # and it is priced


def test_resolve_model_precedence_overrides_then_default() -> None:
    overrides = {"tune": "claude-haiku-4-5"}
    assert resolve_model("tune") == "claude-opus-5-5"
    assert resolve_model("tune", overrides) == "claude-haiku-4-5"
    assert resolve_model("design", overrides) == "claude-opus-5-5"
    with pytest.raises(ConfigError, match="must be a string"):
        resolve_model("tune", {"tune": 5})


def test_resolve_model_rejects_unknown_step() -> None:
    with pytest.raises(ConfigError, match="'ranking'"):
        resolve_model("ranking")
    with pytest.raises(ConfigError, match="'summary'"):  # the summary step is gone
        resolve_model("summary")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 1M input, 1M output, 1M cache write (5m), 1M cache read
        ("claude-opus-5", 5 + 25 + 6.25 + 0.50),
        ("claude-sonnet-5", 2 + 10 + 2.50 + 0.20),
        ("claude-haiku-4-5", 1 + 5 + 1.25 + 0.10),
        ("claude-opus-5-5", 4 + 20 + 5 + 0.20),
    ],
)
def test_cost_usd_prices_each_token_kind(model: str, expected: float) -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000,
             "cache_creation_input_tokens": 1_000_000, "cache_read_input_tokens": 1_000_000}
    assert cost_usd(model, usage) == pytest.approx(expected)


def test_cost_usd_small_call() -> None:
    usage = {"input_tokens": 1200, "output_tokens": 800, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 3000}
    # 1200*2 + 800*10 + 3000*0.2 = 11000 micro-dollars
    assert cost_usd("claude-sonnet-5", usage) == pytest.approx(0.011)


def test_cost_usd_uses_1h_rate_from_cache_creation_breakdown() -> None:
    usage = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 3_000_000,
             "cache_creation": {"ephemeral_5m_input_tokens": 1_000_000, "ephemeral_1h_input_tokens": 2_000_000}}
    assert cost_usd("claude-opus-5", usage) == pytest.approx(6.25 + 2 * 10)


def test_haiku_5_5_long_prompt_tier() -> None:
    short = {"input_tokens": 100_000, "output_tokens": 0}
    long = {"input_tokens": 100_001, "output_tokens": 0}
    assert cost_usd("claude-haiku-5-5", short) == pytest.approx(100_000 * 0.10 / 1e6)
    assert cost_usd("claude-haiku-5-5", long) == pytest.approx(100_001 * 0.50 / 1e6)


def test_dated_model_id_uses_its_family_price() -> None:
    assert price_for("claude-haiku-4-5-20251001") == price_for("claude-haiku-4-5")
    # the longest prefix wins: opus-5-5 is not priced as opus-5
    assert price_for("claude-opus-5-5-20260901") == price_for("claude-opus-5-5")


def test_unknown_model_is_a_config_error_unless_priced() -> None:
    with pytest.raises(ConfigError, match="claude-mystery-9"):
        cost_usd("claude-mystery-9", {"input_tokens": 1})
    prices = {"claude-mystery-9": ModelPrice(1.0, 2.0, 1.25, 2.0, 0.1)}
    assert cost_usd("claude-mystery-9", {"input_tokens": 1_000_000, "output_tokens": 500_000}, prices) == (
        pytest.approx(2.0))


def test_price_override_beats_builtin_table() -> None:
    prices = {"claude-opus-5": ModelPrice(1.0, 1.0, 1.0, 1.0, 1.0)}
    assert cost_usd("claude-opus-5", {"input_tokens": 1_000_000}, prices) == pytest.approx(1.0)


def test_negative_token_count_is_rejected() -> None:
    with pytest.raises(ConfigError, match="input_tokens"):
        cost_usd("claude-opus-5", {"input_tokens": -5})


def test_bad_price_is_rejected() -> None:
    with pytest.raises(ConfigError, match="output"):
        ModelPrice(1.0, -2.0, 1.0, 1.0, 0.1)


def test_forced_tool_use_support() -> None:
    assert supports_forced_tool_use("claude-opus-5")
    assert not supports_forced_tool_use("claude-opus-5-5")
    assert not supports_forced_tool_use("claude-sonnet-5-5-20261001")


def test_llm_package_does_not_import_airflow() -> None:
    code = "import sys, blofin_pipeline.llm; assert 'airflow' not in sys.modules, 'airflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
