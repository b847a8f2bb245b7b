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
  except `"auto"` for the models that reject forced tool use (Opus/Sonnet 5.5).
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


@dataclass(frozen=True)
class LLMSettings:
    """Model routing, output budget, price overrides and reply mode of the structured calls."""

    models: Mapping[str, str] = field(default_factory=dict)
    max_tokens: Mapping[str, int] = field(default_factory=dict)
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    structured_output: str = "tool"
    tool_choice: str | None = None

    def __post_init__(self) -> None:
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
            return cls(models=dict(models), max_tokens={k: int(v) for k, v in max_tokens.items()},
                       prices=prices, structured_output=extras.get("structured_output") or "tool",
                       tool_choice=extras.get("tool_choice") or None)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from err

    def model_for(self, step: str) -> str:
        """Model id for a step: the `models` setting, else the built-in default."""
        return resolve_model(step, self.models)

    def max_tokens_for(self, step: str) -> int:
        return int(self.max_tokens.get(step) or DEFAULT_MAX_TOKENS[step])

    def tool_choice_for(self, model: str, tool: str) -> dict[str, Any]:
        """The request's `tool_choice`: forced to the reply tool unless the model rejects that."""
        choice = self.tool_choice or ("tool" if supports_forced_tool_use(model) else "auto")
        return {"type": "tool", "name": tool} if choice == "tool" else {"type": choice}
