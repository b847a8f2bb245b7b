"""The day's shared prompt prefix: one cacheable head for the design, tune and review calls.

The prompt cache matches prefixes in the order tools -> system -> messages, byte for byte.
So every LLM call of a day sends the same tools (`llm.tools.day_tools`) and the same system
blocks, built here from the day's briefing, with one cache breakpoint (TTL 1 hour by
default) at the end of the system: the first call of the day writes it, the others read it.
What differs per step (the task, the strategies to tune, the day's report) comes after it,
in the user message (`llm.prompts`).

System blocks:
1. the role and the three tasks (static);
2. the strategy contract and how strategies are judged: metric and score definitions, bar
   size, fee and slippage, history and scoring window (fixed by the run's configuration);
3. the day's research context: portfolio with scores, coverage gaps, market regime per
   symbol, top and bottom performers (with code), what was archived recently and why, and
   the recent failed changes (rejected candidates, tunes that did not improve).

Every float is rounded to 4 significant digits and JSON keys are sorted, so the same day
gives the same bytes in every step. Briefing keys: `run` (run_date, timeframe, fee,
slippage, score_window_days, history_days, wf_folds, symbols, synthetic), `portfolio`,
`regimes`, `top_performers`, `bottom_performers`, `archived`, `failed_changes`,
`categories`, `contract` (optional).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from blofin_pipeline.backtest import stats
from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.schemas import CATEGORIES

#: Significant digits of every number in a prompt.
PROMPT_DIGITS = 4
#: Longest strategy source quoted in a prompt; longer files are cut (the model sees the cut).
MAX_CODE_CHARS = 6000

ROLE = (
    "You are a quantitative researcher for a crypto perpetual-futures desk trading on BloFin. "
    "You are careful about overfitting, fees and lookahead bias. Each request gives you one task "
    "of the daily research loop: design new strategies, tune underperforming ones, or review the "
    "day. Answer only by calling the tool the request names, with every required field filled."
)

STRATEGY_CONTRACT = '''\
A strategy is ONE self-contained Python file defining ONE subclass of
`blofin_pipeline.strategies.Strategy` with the class attributes `name` (unique snake_case),
`category` (one of: {categories}), `params` (defaults) and `param_space` ((low, high)
bounds per parameter, used for tuning), and the method
`generate_signals(self, candles: pd.DataFrame) -> pd.Series`.

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
- Read parameters from `self.params`; every key of `params` has a bound in `param_space`,
  and every default lies inside its bounds.
'''

#: The contract's example file (also the `examples` of a design's `code` in `llm.tools`).
EXAMPLE_CODE = '''\
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class EmaCrossFast(Strategy):
    name = "ema_cross_fast"
    category = "trend"
    params = {"fast": 12, "slow": 26}
    param_space = {"fast": (5, 50), "slow": (20, 200)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        fast = candles["close"].ewm(span=int(self.params["fast"]), adjust=False).mean()
        slow = candles["close"].ewm(span=int(self.params["slow"]), adjust=False).mean()
        signal = pd.Series(np.where(fast > slow, 1.0, -1.0), index=candles.index)
        signal.iloc[: int(self.params["slow"])] = 0.0
        return signal
'''

METRICS = '''\
Per symbol, out of sample (walk-forward: parameters chosen on each fold's training part,
judged on the next part), after fees and slippage:
- sharpe: mean / std of the bar returns, annualised with 365 days a year at the bar size;
- sortino: as sharpe, downside deviation only; calmar: annual return / |max_drawdown|;
- max_drawdown: worst peak-to-trough loss of equity (<= 0); total_return, cagr;
- win_rate: share of winning trades; profit_factor: gross win / gross loss; n_trades;
- exposure: share of bars with a position; turnover: mean |position change| per bar;
- dsr (deflated Sharpe): probability that the Sharpe ratio is not luck among all the
  configurations ever tried; significant at >= {significant}.
score = raw * min(1, n_trades / {min_trades}) if raw > 0 else raw, with
raw = {w_sharpe} * clip(sharpe, -{cap}, {cap}) / {cap} + {w_calmar} * clip(calmar, -{cap}, {cap}) / {cap}
      + {w_dsr} * (2 * dsr - 1) - {penalty} * max(0, |max_drawdown| - {tolerance}).
The ranking keeps the strategies with the highest mean score over the symbols.
'''


class DayPrefix(NamedTuple):
    """The day's tools and system blocks, identical in every LLM call of the day."""

    tools: list[dict[str, Any]] | None
    system: list[dict[str, Any]]


def rounded(value: Any, digits: int = PROMPT_DIGITS) -> Any:
    """`value` with every float rounded to `digits` significant digits (NaN/inf become None)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) or (hasattr(value, "item") and isinstance(getattr(value, "item")(), float)):
        number = float(value)
        return float(f"{number:.{digits}g}") if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def render_json(value: Any) -> str:
    """Deterministic, rounded JSON for a prompt (sorted keys)."""
    return json.dumps(rounded(value), indent=1, sort_keys=True, default=str, ensure_ascii=False)


def render_code(code: str | None, max_chars: int = MAX_CODE_CHARS) -> str:
    if not code:
        return "(code not available)"
    if len(code) > max_chars:
        code = code[:max_chars] + f"\n# ... cut: {len(code) - max_chars} more characters"
    return f"```python\n{code}\n```"


def text_block(text: str, ttl: str | None = None) -> dict[str, Any]:
    """A system text block; with `ttl` it ends a cached prefix (`cache_control`)."""
    block: dict[str, Any] = {"type": "text", "text": text}
    if ttl is not None:
        block["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    return block


def _mapping(context: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = context.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"prompt context {key!r} must be a dict, got {type(value).__name__}")
    return dict(value)


def _list(context: Mapping[str, Any], key: str) -> list[Any]:
    value = context.get(key) or []
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ConfigError(f"prompt context {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def judging_text(run: Mapping[str, Any]) -> str:
    """How strategies are judged: the metric and score definitions, costs, bar size, history."""
    text = METRICS.format(
        significant=stats.SIGNIFICANT_DSR, min_trades=stats.SCORE_MIN_TRADES, w_sharpe=stats.SCORE_SHARPE_WEIGHT,
        w_calmar=stats.SCORE_CALMAR_WEIGHT, w_dsr=stats.SCORE_DSR_WEIGHT, cap=stats.SCORE_RATIO_CAP,
        penalty=stats.SCORE_DRAWDOWN_PENALTY, tolerance=stats.SCORE_DRAWDOWN_TOLERANCE)
    if run:
        fee, slippage = run.get("fee"), run.get("slippage")
        costs = (f"- costs: fee {fee:.4%} and slippage {slippage:.4%} of the traded notional per unit of "
                 "position change (a flip from -1 to +1 pays twice)\n") if fee is not None and slippage is not None \
            else ""
        text += (
            "\n## This run\n"
            f"- bar size: {run.get('timeframe', '?')} candles; symbols: {', '.join(run.get('symbols') or [])}\n"
            + costs
            + f"- history: {run.get('history_days', '?')} days stored; each strategy is scored on "
            f"{_span(run.get('score_window_days'))} in {run.get('wf_folds', '?')} walk-forward folds\n"
            f"- data: {'SYNTHETIC sample market (no conclusion about real markets)' if run.get('synthetic') else 'BloFin exchange candles'}\n"
        )
    return text


def _span(window_days: Any) -> str:
    return "the whole stored history" if window_days == 0 else f"the last {window_days if window_days else '?'} days"


def _performers(title: str, performers: list[Mapping[str, Any]]) -> str:
    if not performers:
        return f"## {title}\n(none)\n"
    parts = [f"## {title}"]
    for perf in performers:
        facts = {k: perf.get(k) for k in ("score", "metrics", "params", "param_space") if perf.get(k) is not None}
        parts.append(f"### {perf.get('name', '?')} ({perf.get('category', '?')})\n{render_json(facts)}\n"
                     f"{render_code(perf.get('code'))}")
    return "\n\n".join(parts) + "\n"


def context_text(briefing: Mapping[str, Any]) -> str:
    """The day's research context (block 3)."""
    run = _mapping(briefing, "run")
    archived = _list(briefing, "archived")
    failed = _list(briefing, "failed_changes") or _list(briefing, "rejected")
    return (
        f"# Research context for {run.get('run_date', 'today')}\n\n"
        f"## Portfolio (active strategies, mean score and per-symbol scores)\n"
        f"{render_json(_mapping(briefing, 'portfolio'))}\n\n"
        f"## Market regime per symbol\n{render_json(_mapping(briefing, 'regimes'))}\n\n"
        + _performers("Top performers", _list(briefing, "top_performers")) + "\n"
        + _performers("Bottom performers", _list(briefing, "bottom_performers")) + "\n"
        + "## Archived recently, and why\n" + (render_json(archived) if archived else "(none)") + "\n\n"
        + "## Failed changes recently (rejected candidates, tunes that did not improve): do not repeat them\n"
        + (render_json(failed) if failed else "(none)") + "\n"
    )


def build_day_prefix(briefing: Mapping[str, Any], *, tools: list[dict[str, Any]] | None = None,
                     ttl: str = "5m") -> DayPrefix:
    """The shared head of the day's requests: `tools` and the three system blocks."""
    contract = briefing.get("contract") or (STRATEGY_CONTRACT.format(
        categories=" | ".join(briefing.get("categories") or CATEGORIES))
        + f"\nExample:\n\n```python\n{EXAMPLE_CODE}```\n")
    if not isinstance(contract, str):
        raise ConfigError("prompt context 'contract' must be a string")
    system = [
        text_block(ROLE),
        text_block(f"# Strategy contract\n\n{contract}\n# How strategies are judged\n\n"
                   f"{judging_text(_mapping(briefing, 'run'))}"),
        text_block(context_text(briefing), ttl=ttl),
    ]
    return DayPrefix(tools, system)
