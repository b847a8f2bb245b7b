"""Prompt builders for the design, tune and review steps (pure functions).

Each builder returns a `Prompt`: the system blocks and tools of the day's shared prefix
(`llm.prefix.DayPrefix`, identical in every call of the day so the prompt cache hits),
and the step's own user message after it. Without a prefix the builder makes one from the
same context (then the call offers only its own tool).

Context keys besides the briefing's (`llm.prefix`), all optional unless stated:
- design: `n_strategies` (int, default 3), `categories`, `portfolio.gaps`;
- tune: `candidates` (list of dict, required): `name, category, params, param_space,
  metrics, diagnosis, span` (the bars both were measured on), `code`, `failed_changes`;
- review: `report` (dict, required): the day's report data.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.llm.prefix import (
    DayPrefix,
    build_day_prefix,
    render_code,
    render_json,
)
from blofin_pipeline.llm.schemas import (
    CATEGORIES,
    DesignReply,
    ReviewReply,
    TuneReply,
    tool_name,
)


class Prompt(NamedTuple):
    """System blocks, user message and (when shared by the day) tools of one request."""

    system: list[dict[str, Any]]
    user: str
    tools: list[dict[str, Any]] | None = None


def _prompt(prefix: DayPrefix | None, context: Mapping[str, Any], user: str) -> Prompt:
    prefix = prefix or build_day_prefix(context)
    return Prompt(list(prefix.system), user, prefix.tools)


def _list(context: Mapping[str, Any], key: str) -> list[Any]:
    value = context.get(key) or []
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ConfigError(f"prompt context {key!r} must be a list, got {type(value).__name__}")
    return list(value)


def build_design_prompt(context: Mapping[str, Any], prefix: DayPrefix | None = None) -> Prompt:
    """Ask for `n_strategies` new strategy files that fill the portfolio's coverage gaps."""
    n = context.get("n_strategies", 3)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise ConfigError(f"prompt context 'n_strategies' must be an integer in [1, 10], got {n!r}")
    categories = list(context.get("categories") or CATEGORIES)
    portfolio = context.get("portfolio") or {}
    gaps = portfolio.get("gaps") if isinstance(portfolio, Mapping) else None
    user = (
        f"Task: design {n} new strategies.\n"
        + (f"Fill these coverage gaps first (category x regime x symbol):\n{render_json(gaps)}\n" if gaps else "")
        + "Learn from the top performers' strengths and the bottom performers' failures, fit the current "
        "market regime, and do not repeat the archived strategies or the failed changes listed in the "
        "research context. Mind the costs: every position change pays the fee and the slippage.\n"
        f"Allowed categories: {', '.join(categories)}.\n\n"
        "For each strategy give a unique snake_case name (not the name of an existing strategy), its "
        "category, a short rationale and the complete file as `code`. The file's class attributes `name` "
        "and `category` must equal those fields, and every default in `params` must lie inside its "
        f"`param_space` bounds. Hand in the answer by calling `{tool_name(DesignReply)}`."
    )
    return _prompt(prefix, context, user)


def _candidate_text(cand: Mapping[str, Any]) -> str:
    facts = {k: cand.get(k) for k in ("params", "param_space", "metrics", "diagnosis", "failed_changes")
             if cand.get(k) is not None}
    span = cand.get("span")
    measured = f"Metrics and diagnosis measured on {span}.\n" if span else ""
    return (f"## {cand.get('name', '?')} ({cand.get('category', '?')})\n{measured}{render_json(facts)}\n"
            f"{render_code(cand.get('code'))}")


def build_tune_prompt(context: Mapping[str, Any], prefix: DayPrefix | None = None) -> Prompt:
    """Ask for parameter changes (and code changes where needed) for the underperformers."""
    candidates = _list(context, "candidates")
    if not candidates:
        raise ConfigError("prompt context 'candidates' must list at least one strategy to tune")
    user = (
        "Task: tune these underperforming strategies. Prefer parameter changes inside param_space; "
        "change code only when parameters cannot fix the failure. Their metrics and the diagnosed "
        "failure patterns (drawdown clusters, overtrading and fee drag, regime mismatch, low win rate) "
        "come from the same bars; the market regime and the top performers are in the research "
        "context above.\n\n"
        + "\n\n".join(_candidate_text(c) for c in candidates)
        + "\n\nFor each strategy propose new values for all its `params` (every value inside its "
        "param_space bounds), your `diagnosis`, a `rationale`, and `code` only if the file itself must "
        "change (then the complete new file). Do not propose a change listed as failed. Hand in the "
        f"answer by calling `{tool_name(TuneReply)}`."
    )
    return _prompt(prefix, context, user)


def build_review_prompt(context: Mapping[str, Any], prefix: DayPrefix | None = None) -> Prompt:
    """Ask for the day's strategic analysis: working, not working, risks, recommendations."""
    report = context.get("report") or {}
    if not isinstance(report, Mapping) or not report:
        raise ConfigError("prompt context 'report' must be a non-empty dict for the review")
    user = (
        f"Task: review the day's research run as the head of research. The day's report:\n"
        f"{render_json(report)}\n\n"
        "Write a strategic analysis: a summary paragraph, what is working, what is not working, "
        "the risks, and concrete recommendations for the next runs. Be specific: name strategies, "
        f"symbols and metrics. Hand in the answer by calling `{tool_name(ReviewReply)}`."
    )
    return _prompt(prefix, context, user)


def validation_feedback(error: str) -> str:
    """The user turn that sends a validation error back to the model for its one retry."""
    return (
        "Your answer was rejected by the validator:\n"
        f"{error}\n"
        "Fix exactly these problems and hand in the complete corrected answer again."
    )
