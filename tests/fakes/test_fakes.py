"""The fake Messages API's own rules: schema-valid random values and the prompt-caching rules.

The LLM tests rest on these, so they are pinned here: a value drawn for a schema validates
against it (checked with `jsonschema`), and the cache behaves as documented.
"""
from __future__ import annotations

import jsonschema
import pytest

from blofin_pipeline.llm.schemas import CATEGORIES
from blofin_pipeline.llm.tools import day_tools
from tests.fakes.prompt_cache import CacheRuleError, PromptCache
from tests.fakes.schema_values import SchemaFaker

TOOLS = day_tools(categories=CATEGORIES, n_designs=3,
                  tune_targets={"ema_cross": {"fast": (5, 50), "slow": (20, 200)},
                                "rsi_fade": {"window": (2, 30), "level": (0.1, 0.9), "side": ["long", "short"]}})


@pytest.mark.parametrize("seed", range(20))
def test_drawn_values_validate_against_the_tool_schemas(seed) -> None:
    faker = SchemaFaker(seed, optional_p=0.5)
    for tool in TOOLS:
        jsonschema.validate(faker.value(tool["input_schema"]), tool["input_schema"])


def test_draws_cover_the_choices_and_respect_patterns_and_exclusions() -> None:
    faker = SchemaFaker(1)
    names = [faker.value({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$", "not": {"enum": ["if"]}})
             for _ in range(200)]
    assert len(set(names)) > 150 and "if" not in names
    categories = {faker.value({"enum": list(CATEGORIES)}) for _ in range(200)}
    assert categories == set(CATEGORIES)
    numbers = [faker.value({"type": "integer", "minimum": 5, "maximum": 7}) for _ in range(100)]
    assert set(numbers) == {5, 6, 7}
    assert faker.value({"type": "string", "examples": ["the example"]}) == "the example"


def request(system: str, *, ttl: str = "5m", user: str = "task", model: str = "claude-opus-5-5", **extra) -> dict:
    return {"model": model, "tools": [{"name": "t", "input_schema": {"type": "object"}}],
            "system": [{"type": "text", "text": "role"},
                       {"type": "text", "text": system, "cache_control": {"type": "ephemeral", "ttl": ttl}}],
            "messages": [{"role": "user", "content": user}], **extra}


def test_a_prefix_is_written_then_read_and_only_an_identical_prefix_hits() -> None:
    cache = PromptCache()
    big = "x" * 8000  # ~2000 tokens, above every minimum but Haiku 4.5's
    first = cache.usage(request(big))
    assert first["cache_creation_input_tokens"] > 2000 and first["cache_read_input_tokens"] == 0
    assert first["cache_creation"]["ephemeral_5m_input_tokens"] == first["cache_creation_input_tokens"]
    second = cache.usage(request(big, user="another task"))  # after the breakpoint: still a hit
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert cache.usage(request(big + "!"))["cache_read_input_tokens"] == 0  # one byte differs
    assert cache.usage(request(big, model="claude-sonnet-5-5"))["cache_read_input_tokens"] == 0  # per model
    changed_tools = {**request(big), "tools": [{"name": "u", "input_schema": {"type": "object"}}]}
    assert cache.usage(changed_tools)["cache_read_input_tokens"] == 0  # tools come first in the prefix


def test_below_the_models_minimum_nothing_is_cached() -> None:
    cache = PromptCache()
    small = "x" * 2000  # ~500 tokens: under 1024
    for _ in range(2):
        usage = cache.usage(request(small))
        assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    assert cache.usage(request(small, model="claude-opus-5"))["cache_creation_input_tokens"] > 0  # Opus 5: 512


def test_entries_expire_after_their_ttl_from_last_use() -> None:
    now = [0.0]
    cache = PromptCache(clock=lambda: now[0])
    big = "x" * 8000
    cache.usage(request(big))
    now[0] = 299.0
    assert cache.usage(request(big))["cache_read_input_tokens"] > 0  # read: refreshed to 599
    now[0] = 598.0
    assert cache.usage(request(big))["cache_read_input_tokens"] > 0
    now[0] = 1000.0
    assert cache.usage(request(big))["cache_read_input_tokens"] == 0  # expired: written again
    other = "y" * 8000
    hour = cache.usage(request(other, ttl="1h"))
    assert hour["cache_creation"]["ephemeral_1h_input_tokens"] > 0
    now[0] = 1000.0 + 3000.0
    assert cache.usage(request(other, ttl="1h"))["cache_read_input_tokens"] > 0  # 50 minutes later
    assert cache.usage(request(big))["cache_read_input_tokens"] == 0  # the 5-minute one is gone


def test_rules_a_request_can_break() -> None:
    blocks = [{"type": "text", "text": f"b{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(CacheRuleError, match="maximum of 4"):
        PromptCache().usage({"model": "m", "system": blocks, "messages": []})
    wrong_order = [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                   {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    with pytest.raises(CacheRuleError, match="cannot come after"):
        PromptCache().usage({"model": "m", "system": wrong_order, "messages": []})


def test_a_longer_prompt_finds_the_entry_of_a_shorter_one_within_20_blocks() -> None:
    cache = PromptCache()
    base = request("x" * 8000)
    first = cache.usage(base)
    longer = {**base, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "task"}, {"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}}]}]}
    usage = cache.usage(longer)
    assert usage["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
