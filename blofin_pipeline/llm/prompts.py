"""Prompt builders for the design, tune and review steps (pure functions).

Each builder takes a plain dict context and returns a `Prompt`: the system blocks and the
user message of a Messages API request. The large context that repeats between calls
(strategy contract, portfolio, market regime, performers) sits in system blocks marked
with `cache_control: {"type": "ephemeral"}`, so a validation retry or a second call of the
day reads it from the prompt cache. Rendering is deterministic (sorted JSON keys) because
the cache only hits on a byte-identical prefix.

Context keys (all optional unless stated):
- `contract` (str): the strategy contract; defaults to `STRATEGY_CONTRACT`.
- `portfolio` (dict): current strategies and coverage, e.g. `{"strategies": [...],
  "coverage": {...}, "gaps": [{"category", "regime", "symbol"}, ...]}`.
- `regimes` (dict): regime per symbol, e.g. `{"BTC-USDT": {"trend": "up", "volatility": "high"}}`.
- `top_performers` / `bottom_performers` (list of dict): `name, category, metrics, params, code`.
- `rejected` (list of dict): knowledge-base feedback, `name, reasons` (and `date`).
- `categories` (list of str): categories allowed for new strategies.
- design: `n_strategies` (int, default 3).
- tune: `candidates` (list of dict, required): `name, category, params, param_space,
  metrics, diagnosis` (failure patterns), `code`.
- review: `report` (dict, required): the day's report data.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.schemas import (
    CATEGORIES,
    DesignReply,
    ReviewReply,
    TuneReply,
    tool_name,
)

CACHE_CONTROL: dict[str, str] = {"type": "ephemeral"}

#: Longest strategy source quoted in a prompt; longer files are cut (the model sees the cut).
MAX_CODE_CHARS = 6000

STRATEGY_CONTRACT = '''\
A strategy is ONE self-contained Python file defining ONE subclass of
`blofin_pipeline.strategies.Strategy`:

```python
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class EmaCrossFast(Strategy):
    name = "ema_cross_fast"            # unique snake_case name
    category = "trend"                  # one of: {categories}
    params = {{"fast": 12, "slow": 26}}   # defaults
    param_space = {{"fast": (5, 50), "slow": (20, 200)}}   # (low, high) bounds used for tuning

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        fast = candles["close"].ewm(span=self.params["fast"], adjust=False).mean()
        slow = candles["close"].ewm(span=self.params["slow"], adjust=False).mean()
        return pd.Series(np.where(fast > slow, 1.0, -1.0), index=candles.index)
```

Rules:
- `candles` has a UTC DatetimeIndex and float columns open, high, low, close, volume.
- Return a pd.Series on the same index, values in [-1, 1] (target position decided at the
  bar's close, held over the next bar). No NaN: fill warm-up bars with 0.
- The signal at bar t may use only data up to and including bar t: no `shift(-k)`, no
  centred windows, no global normalisation over the whole series. Every file is checked
  for lookahead before it is scored.
- Imports: only numpy, pandas, math, statistics and `from blofin_pipeline.strategies import
  Strategy`. No file, network, process or environment access, no `eval`/`exec`/`__import__`,
  no dunder attribute tricks.
- Vectorised pandas/numpy; it must finish in well under a second on 10,000 bars.
- Read parameters from `self.params`; every key of `params` has a bound in `param_space`.
'''.format(categories=" | ".join(CATEGORIES))


class Prompt(NamedTuple):
    """System blocks and user message of one Messages API request."""

    system: list[dict[str, Any]]
    user: str


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False)


def _text_block(text: str, cached: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cached:
        block["cache_control"] = dict(CACHE_CONTROL)
    return block


def _code(code: str | None, max_chars: int = MAX_CODE_CHARS) -> str:
    if not code:
        return "(code not available)"
    if len(code) > max_chars:
        code = code[:max_chars] + f"\n# ... cut: {len(code) - max_chars} more characters"
    return f"```python\n{code}\n```"


def _list(context: Mapping[str, Any], key: str) -> list[Any]:
    value = context.get(key) or []
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ConfigError(f"prompt context {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def _mapping(context: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = context.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"prompt context {key!r} must be a dict, got {type(value).__name__}")
    return dict(value)


def _performers(title: str, performers: list[Mapping[str, Any]]) -> str:
    if not performers:
        return f"## {title}\n(none)\n"
    parts = [f"## {title}"]
    for perf in performers:
        header = f"### {perf.get('name', '?')} ({perf.get('category', '?')})"
        facts = {k: perf.get(k) for k in ("metrics", "params", "param_space") if perf.get(k) is not None}
        parts.append(f"{header}\n{_json(facts)}\n{_code(perf.get('code'))}")
    return "\n\n".join(parts) + "\n"


def _contract_block(context: Mapping[str, Any]) -> dict[str, Any]:
    contract = context.get("contract") or STRATEGY_CONTRACT
    if not isinstance(contract, str):
        raise ConfigError("prompt context 'contract' must be a string")
    return _text_block(f"# Strategy contract\n\n{contract}", cached=True)


def _market_block(context: Mapping[str, Any], with_performers: bool) -> dict[str, Any]:
    text = (
        "# Research context\n\n"
        f"## Portfolio\n{_json(_mapping(context, 'portfolio'))}\n\n"
        f"## Market regime per symbol\n{_json(_mapping(context, 'regimes'))}\n"
    )
    if with_performers:
        text += "\n" + _performers("Top performers", _list(context, "top_performers"))
        text += "\n" + _performers("Bottom performers", _list(context, "bottom_performers"))
    return _text_block(text, cached=True)


ROLE = (
    "You are a quantitative researcher for a crypto perpetual-futures desk trading on BloFin. "
    "You are careful about overfitting, fees and lookahead bias, and you answer only through "
    "the tool you are given, with every field filled."
)


def build_design_prompt(context: Mapping[str, Any]) -> Prompt:
    """Ask for `n_strategies` new strategy files that fill the portfolio's coverage gaps."""
    n = context.get("n_strategies", 3)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise ConfigError(f"prompt context 'n_strategies' must be an integer in [1, 10], got {n!r}")
    categories = list(context.get("categories") or CATEGORIES)
    system = [
        _text_block(ROLE + "\n\nTask: design new trading strategies as Python files following the "
                    "strategy contract below."),
        _contract_block(context),
        _market_block(context, with_performers=True),
    ]
    rejected = _list(context, "rejected")
    feedback = (
        "Recently rejected candidates (do not repeat these mistakes):\n" + _json(rejected)
        if rejected else "No candidate was rejected recently."
    )
    gaps = _mapping(context, "portfolio").get("gaps")
    user = (
        f"Design {n} new strategies.\n"
        + (f"Fill these coverage gaps first (category x regime x symbol):\n{_json(gaps)}\n" if gaps else "")
        + "Learn from the top performers' strengths and the bottom performers' failures, and fit "
        "the current market regime.\n"
        f"Allowed categories: {', '.join(categories)}.\n"
        f"{feedback}\n\n"
        "For each strategy give a unique snake_case name (also the class attribute `name`, and "
        "not the name of an existing strategy), its category, a short rationale and the complete "
        f"file as `code`. Hand in the answer by calling `{tool_name(DesignReply)}`."
    )
    return Prompt(system, user)


def build_tune_prompt(context: Mapping[str, Any]) -> Prompt:
    """Ask for parameter changes (and code changes where needed) for the underperformers."""
    candidates = _list(context, "candidates")
    if not candidates:
        raise ConfigError("prompt context 'candidates' must list at least one strategy to tune")
    system = [
        _text_block(ROLE + "\n\nTask: tune underperforming strategies. Prefer parameter changes "
                    "inside param_space; change code only when parameters cannot fix the failure."),
        _contract_block(context),
        _market_block(context, with_performers=True),
    ]
    parts = []
    for cand in candidates:
        facts = {k: cand.get(k) for k in ("params", "param_space", "metrics", "diagnosis") if k in cand}
        parts.append(f"## {cand.get('name', '?')} ({cand.get('category', '?')})\n{_json(facts)}\n"
                     f"{_code(cand.get('code'))}")
    rejected = _list(context, "rejected")
    user = (
        "Strategies to tune, with their out-of-sample metrics and diagnosed failure patterns "
        "(drawdown clusters, overtrading and fee drag, regime mismatch, low win rate):\n\n"
        + "\n\n".join(parts)
        + ("\n\nEarlier changes that were rejected:\n" + _json(rejected) if rejected else "")
        + "\n\nFor each strategy propose new `params` (every value inside its param_space bounds), "
        "your `diagnosis`, a `rationale`, and `code` only if the file itself must change (then the "
        f"complete new file). Hand in the answer by calling `{tool_name(TuneReply)}`."
    )
    return Prompt(system, user)


def build_review_prompt(context: Mapping[str, Any]) -> Prompt:
    """Ask for the day's strategic analysis: working, not working, risks, recommendations."""
    report = _mapping(context, "report")
    if not report:
        raise ConfigError("prompt context 'report' must be a non-empty dict for the review")
    system = [
        _text_block(ROLE + "\n\nTask: review the day's research run as the head of research."),
        _market_block(context, with_performers=False),
    ]
    user = (
        f"The day's report:\n{_json(report)}\n\n"
        "Write a strategic analysis: a summary paragraph, what is working, what is not working, "
        "the risks, and concrete recommendations for the next runs. Be specific: name strategies, "
        f"symbols and metrics. Hand in the answer by calling `{tool_name(ReviewReply)}`."
    )
    return Prompt(system, user)


def validation_feedback(error: str) -> str:
    """The user turn that sends a validation error back to the model for its one retry."""
    return (
        "Your answer was rejected by the validator:\n"
        f"{error}\n"
        "Fix exactly these problems and hand in the complete corrected answer again."
    )
