"""Model routing per research step and the price table behind the cost accounting.

Default ids are the newest generation of the model lines the pinned SDK lists (anthropic
2.12.0, `types/model_param.py`: claude-opus-5-5, claude-sonnet-5-5, claude-haiku-5-5).
All three steps default to Opus 5.5. The specification had Sonnet tune, but a prompt cache
is per model: with one model the tune call reads the day's prefix that the design call
wrote (at a tenth of the input price) instead of writing its own, which makes up for
Opus's dearer tokens at the tune call's size (about the same USD, measured against the fake
API in issue 14's note). Route tuning to Sonnet with `models: {"tune": "claude-sonnet-5-5"}`. The SDK also lists the fable and
mythos lines, which have no documented price here, so they are never a default. Prices are
USD per million tokens (model pages to Oct 2026); the Message Batches API halves them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blofin_pipeline.exceptions import ConfigError

STEPS: tuple[str, ...] = ("design", "tune", "review")

OPUS = "claude-opus-5-5"
SONNET = "claude-sonnet-5-5"

#: One model for the day's calls, so they share the cached prompt prefix (see above).
DEFAULT_MODELS: Mapping[str, str] = {"design": OPUS, "review": OPUS, "tune": OPUS}

MTOK = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model (optionally a dearer tier for long prompts)."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    #: Prompts (input + cache write + cache read tokens) above this size use `long_prompt`.
    long_prompt_above: int | None = None
    long_prompt: ModelPrice | None = None

    def __post_init__(self) -> None:
        for field in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"price field {field!r} must be a non-negative number, got {value!r}")
        if (self.long_prompt_above is None) != (self.long_prompt is None):
            raise ConfigError("long_prompt_above and long_prompt must be given together")


#: Source: API-NOTES.md section 2 (model pages to Oct 2026).
PRICES: Mapping[str, ModelPrice] = {
    "claude-opus-5-5": ModelPrice(4.0, 20.0, 5.0, 8.0, 0.20),
    "claude-opus-5": ModelPrice(5.0, 25.0, 6.25, 10.0, 0.50),
    "claude-sonnet-5-5": ModelPrice(2.0, 10.0, 2.50, 4.0, 0.20),
    "claude-sonnet-5": ModelPrice(2.0, 10.0, 2.50, 4.0, 0.20),
    "claude-haiku-5-5": ModelPrice(
        0.10, 0.50, 0.125, 0.20, 0.01,
        long_prompt_above=100_000,
        long_prompt=ModelPrice(0.50, 2.50, 0.625, 1.00, 0.05),
    ),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0, 1.25, 2.0, 0.10),
}

#: Models documented to reject forced tool use (tool_choice any/tool).
NO_FORCED_TOOL_USE: frozenset[str] = frozenset({"claude-opus-5-5", "claude-sonnet-5-5"})


def resolve_model(step: str, overrides: Mapping[str, str] | None = None) -> str:
    """Return the model id for a step: `overrides[step]`, else the default."""
    if step not in STEPS:
        raise ConfigError(f"unknown LLM step {step!r}; expected one of {', '.join(STEPS)}")
    if overrides and overrides.get(step):
        chosen = overrides[step]
        if not isinstance(chosen, str):
            raise ConfigError(f"model for step {step!r} must be a string, got {chosen!r}")
        return chosen
    return DEFAULT_MODELS[step]


def _lookup(model: str, table: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """Exact id first, then the longest table id that prefixes it (dated ids, e.g. -20251001)."""
    if model in table:
        return table[model]
    matches = [key for key in table if model.startswith(key + "-")]
    return table[max(matches, key=len)] if matches else None


def price_for(model: str, prices: Mapping[str, ModelPrice] | None = None) -> ModelPrice:
    """Price of `model`: from `prices` (overrides) first, then the built-in table."""
    for table in (prices or {}, PRICES):
        found = _lookup(model, table)
        if found is not None:
            return found
    raise ConfigError(f"no price known for model {model!r}; pass one in prices={{...}}")


def supports_forced_tool_use(model: str) -> bool:
    """False for the models documented to reject tool_choice any/tool."""
    return not any(model == bad or model.startswith(bad + "-") for bad in NO_FORCED_TOOL_USE)


def _tokens(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key) or 0
    if not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"usage field {key!r} must be a non-negative number, got {value!r}")
    return int(value)


def cost_usd(model: str, usage: Mapping[str, Any], prices: Mapping[str, ModelPrice] | None = None, *,
             factor: float = 1.0, cache_factor: float | None = None) -> float:
    """USD cost of one Messages API call from its `usage` object (API field names).

    Cache writes are priced at the 5-minute rate unless the usage carries the
    `cache_creation` breakdown, whose 1-hour part is priced at the 1-hour rate. `factor`
    scales input and output (0.5 on the Message Batches API), `cache_factor` the cache
    writes and reads (default: `factor`).
    """
    price = price_for(model, prices)
    input_tokens = _tokens(usage, "input_tokens")
    output_tokens = _tokens(usage, "output_tokens")
    cache_write = _tokens(usage, "cache_creation_input_tokens")
    cache_read = _tokens(usage, "cache_read_input_tokens")
    breakdown = usage.get("cache_creation") or {}
    if breakdown:
        write_5m = _tokens(breakdown, "ephemeral_5m_input_tokens")
        write_1h = _tokens(breakdown, "ephemeral_1h_input_tokens")
        cache_write = max(cache_write, write_5m + write_1h)
        write_5m = cache_write - write_1h
    else:
        write_5m, write_1h = cache_write, 0

    prompt_tokens = input_tokens + cache_write + cache_read
    if price.long_prompt is not None and price.long_prompt_above is not None:
        if prompt_tokens > price.long_prompt_above:
            price = price.long_prompt
    plain = input_tokens * price.input + output_tokens * price.output
    cached = write_5m * price.cache_write_5m + write_1h * price.cache_write_1h + cache_read * price.cache_read
    return (plain * factor + cached * (factor if cache_factor is None else cache_factor)) / MTOK
