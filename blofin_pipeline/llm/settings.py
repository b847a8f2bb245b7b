"""How the structured calls are made: model and token budget per step, prices, reply mode.

`LLMSettings` is what an LLM connection configures (the hook reads it from the
connection's extras with `LLMSettings.from_extras`); the defaults are the built-in model
routing and price table of `llm.models`. Extras read, all optional:
- `models`: `{"design": "...", "tune": "...", "review": "..."}`;
- `max_tokens`: `{"design": 12000, ...}`;
- `prices`: `{"model-id": {"input": .., "output": .., "cache_write_5m": .., "cache_write_1h": ..,
  "cache_read": ..}}` (USD per MTok) for models missing from the built-in table;
- `structured_output`: `"tool"` (default; the reply schema is offered as a tool) or
  `"json_schema"` (`output_config.format`, the JSON comes back as text);
- `tool_choice`: `"tool"` (force the reply tool), `"any"` or `"auto"`; default `"tool"`,
  except `"auto"` for the models that reject forced tool use (Opus/Sonnet 5.5);
- `stream_above_tokens`: requests allowed more output tokens than this are streamed
  (`messages.stream`), so a long answer cannot hit the HTTP timeout (default 10000);
- `cache_ttl`: TTL of the day's shared prompt prefix: `"auto"` (default: `"1h"` in batch
  mode, where the review comes long after the batches wrote it, `"5m"` otherwise, since a
  1-hour write costs 2x the input price against 1.25x and pays only when a later read
  would miss a 5-minute entry), `"5m"` or `"1h"`;
- `batch`: the Message Batches mode, `{"timeout_s": 3600, "poll_s": 60, "price_factor": 0.5,
  "cache_discount": true}`: how long a batch may take before the step falls back to direct
  calls, how often it is polled, the batch price as a share of the standard one, and whether
  that discount also applies to cache reads and writes (documented for input and output
  only: configurable).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.models import (
    ModelPrice,
    resolve_model,
    supports_forced_tool_use,
)

DEFAULT_MAX_TOKENS: Mapping[str, int] = {"design": 12000, "tune": 8000, "review": 4000}
STRUCTURED_MODES = ("tool", "json_schema")
TOOL_CHOICES = ("tool", "any", "auto")
CACHE_TTLS = ("auto", "5m", "1h")
DEFAULT_STREAM_ABOVE_TOKENS = 10_000


@dataclass(frozen=True)
class BatchSettings:
    """The Message Batches mode: wait limit, poll interval, price share."""

    timeout_s: float = 3600.0
    poll_s: float = 60.0
    price_factor: float = 0.5
    cache_discount: bool = True

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.poll_s > 0 and 0 < self.price_factor <= 1):
            raise ConfigError(f"batch settings out of range: {self!r}")

    @property
    def cache_factor(self) -> float:
        """Share of the standard price paid for batch cache reads and writes."""
        return self.price_factor if self.cache_discount else 1.0


@dataclass(frozen=True)
class LLMSettings:
    """Model routing, output budget, price overrides and reply mode of the structured calls."""

    models: Mapping[str, str] = field(default_factory=dict)
    max_tokens: Mapping[str, int] = field(default_factory=dict)
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    structured_output: str = "tool"
    tool_choice: str | None = None
    stream_above_tokens: int = DEFAULT_STREAM_ABOVE_TOKENS
    cache_ttl: str = "auto"
    batch: BatchSettings = field(default_factory=BatchSettings)

    def __post_init__(self) -> None:
        if self.cache_ttl not in CACHE_TTLS:
            raise ConfigError(f"cache_ttl {self.cache_ttl!r} not in {CACHE_TTLS}")
        if self.structured_output not in STRUCTURED_MODES:
            raise ConfigError(f"structured_output {self.structured_output!r} not in {STRUCTURED_MODES}")
        if self.tool_choice is not None and self.tool_choice not in TOOL_CHOICES:
            raise ConfigError(f"tool_choice {self.tool_choice!r} not in {TOOL_CHOICES}")

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any], *, source: str) -> LLMSettings:
        """Settings from a connection's extras; ConfigError names `source` on a bad value."""
        try:
            models = extras.get("models") or {}
            max_tokens = extras.get("max_tokens") or {}
            if not isinstance(models, Mapping) or not isinstance(max_tokens, Mapping):
                raise ConfigError("extras 'models' and 'max_tokens' must be objects")
            try:
                prices = {model: ModelPrice(**fields) for model, fields in (extras.get("prices") or {}).items()}
            except TypeError as err:
                raise ConfigError(f"bad 'prices' extra: {err}") from err
            try:
                batch = BatchSettings(**(extras.get("batch") or {}))
            except TypeError as err:
                raise ConfigError(f"bad 'batch' extra: {err}") from err
            return cls(models=dict(models), max_tokens={k: int(v) for k, v in max_tokens.items()},
                       prices=prices, structured_output=extras.get("structured_output") or "tool",
                       tool_choice=extras.get("tool_choice") or None,
                       stream_above_tokens=int(extras.get("stream_above_tokens") or DEFAULT_STREAM_ABOVE_TOKENS),
                       cache_ttl=extras.get("cache_ttl") or "auto", batch=batch)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from err

    def model_for(self, step: str) -> str:
        """Model id for a step: the `models` setting, else the built-in default."""
        return resolve_model(step, self.models)

    def max_tokens_for(self, step: str) -> int:
        return int(self.max_tokens.get(step) or DEFAULT_MAX_TOKENS[step])

    def ttl_for(self, batch: bool) -> str:
        """The day's prefix TTL: the setting, or for "auto" 1h in batch mode and 5m otherwise."""
        if self.cache_ttl != "auto":
            return self.cache_ttl
        return "1h" if batch else "5m"

    def streams(self, max_tokens: int) -> bool:
        """True when a request allowed `max_tokens` output tokens should be streamed."""
        return max_tokens > self.stream_above_tokens

    def tool_choice_for(self, model: str, tool: str) -> dict[str, Any]:
        """The request's `tool_choice`: forced to the reply tool unless the model rejects that."""
        choice = self.tool_choice or ("tool" if supports_forced_tool_use(model) else "auto")
        return {"type": "tool", "name": tool} if choice == "tool" else {"type": choice}
