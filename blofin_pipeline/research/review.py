"""The day's strategic review: what is working, what is not, risks, recommendations.

`rule_based_review` (offline, the embedded default) derives every point from the day's
facts with fixed, documented thresholds and labels itself {"mode": "rule-based"};
`llm_review` asks the review step's model through the `llm` caller and labels itself
{"mode": "llm", "model": ...}. Both return the same keys: mode, summary, working,
not_working, risks, recommendations (lists of strings), plus the facts they used.

The `day` dict (all keys optional):
- date or run_date (str), synthetic (bool)
- strategies: list of {name, category, score, sharpe, total_return, max_drawdown,
  n_trades, symbol (or symbols), dsr / significant (deflated Sharpe verdict), rank and
  decision (the day's ranking, when there is one)} for the day: the report's leaderboard,
  so the review's leader is the leaderboard's first
- designed, tuned, archived (int counts or lists), rejected (list of {name, reasons})
- regimes: {symbol: detect_regime(...) dict}
- models / ensembles: lists of {name, f1 / accuracy}
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blofin_pipeline.exceptions import LLMBudgetExceeded, LLMError, LLMResponseError
from blofin_pipeline.numeric import finite_or_none
from blofin_pipeline.strategies import CATEGORIES

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMCaller
    from blofin_pipeline.llm.prefix import DayPrefix

logger = logging.getLogger(__name__)

GOOD_SHARPE = 1.0          # out-of-sample Sharpe worth calling "working"
BAD_SHARPE = 0.0           # at or below: "not working"
DEEP_DRAWDOWN = -0.25      # max drawdown at or below this is a risk
CONCENTRATION_SHARE = 0.5  # one category (or symbol) holding more than this share of the top
TOP_N = 5


def _count(value: Any) -> int:
    if isinstance(value, (list, tuple, set)):
        return len(value)
    number = finite_or_none(value)
    return int(number) if number is not None else 0


def _rank_key(row: Mapping[str, Any]) -> float:
    for key in ("score", "sharpe"):
        value = finite_or_none(row.get(key))
        if value is not None:
            return value
    return -math.inf


def _sharpe_or_score(row: Mapping[str, Any]) -> float:
    sharpe = finite_or_none(row.get("sharpe"))
    return sharpe if sharpe is not None else _rank_key(row)


def _label(row: Mapping[str, Any]) -> str:
    parts = [f"{row.get('name')}"]
    if row.get("symbol"):
        parts.append(f"on {row['symbol']}")
    facts = []
    for key, fmt in (("score", "{:.2f}"), ("sharpe", "{:.2f}"), ("total_return", "{:+.1%}"),
                     ("max_drawdown", "{:.1%}")):
        value = finite_or_none(row.get(key))
        if value is not None:
            facts.append(f"{key} {fmt.format(value)}")
    return " ".join(parts) + (f" ({', '.join(facts)})" if facts else "")


def day_facts(day: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers both reviews rest on: rankings, concentration, drawdowns, activity."""
    rows = [r for r in (day.get("strategies") or []) if isinstance(r, Mapping)]
    if rows and all(r.get("rank") is not None for r in rows):  # the day's ranking decides the order
        ranked = sorted(rows, key=lambda r: int(r["rank"]))
    else:
        ranked = sorted(rows, key=_rank_key, reverse=True)
    top = ranked[:TOP_N]
    bottom = [r for r in reversed(ranked[-TOP_N:]) if r not in top] if len(ranked) > TOP_N else []
    top_categories = Counter(str(r.get("category")) for r in top if r.get("category"))
    top_symbols = Counter(str(r.get("symbol")) for r in top if r.get("symbol"))
    drawdowns = sorted(((r, finite_or_none(r.get("max_drawdown"))) for r in rows), key=lambda x: x[1] or 0.0)
    deep = [r for r, dd in drawdowns if dd is not None and dd <= DEEP_DRAWDOWN]
    significant = [r for r in rows if r.get("significant") is True]
    categories = Counter(str(r.get("category")) for r in rows if r.get("category"))
    by_category: dict[str, list[float]] = {}
    for r in rows:
        value = finite_or_none(r.get("score"))
        if r.get("category") and value is not None:
            by_category.setdefault(str(r["category"]), []).append(value)
    category_scores = {c: sum(v) / len(v) for c, v in sorted(by_category.items())}
    return {
        "n_strategies": len(rows),
        "top": top,
        "bottom": bottom,
        "top_categories": dict(top_categories),
        "top_symbols": dict(top_symbols),
        "categories": dict(categories),
        "category_scores": category_scores,
        "deep_drawdowns": deep,
        "significant": significant,
        "designed": _count(day.get("designed")),
        "tuned": _count(day.get("tuned")),
        "archived": _count(day.get("archived")),
        "rejected": list(day.get("rejected") or []),
        "regimes": dict(day.get("regimes") or {}),
        "synthetic": bool(day.get("synthetic", False)),
    }


@dataclass
class _Points:
    """The review's four lists, filled rule by rule in a fixed order."""

    working: list[str] = field(default_factory=list)
    not_working: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)


def _leaders_and_losers(facts: Mapping[str, Any], out: _Points) -> None:
    good = [r for r in facts["top"] if _sharpe_or_score(r) >= GOOD_SHARPE]
    for row in good:  # one leader: the others rank behind it
        place = facts["top"].index(row) + 1
        where = "leads the ranking" if place == 1 else f"ranks #{row.get('rank') or place}"
        out.working.append(f"{_label(row)} {where}")
    if facts["top"] and not good:
        out.working.append(f"best of the day is {_label(facts['top'][0])}, below the Sharpe {GOOD_SHARPE:g} bar")
    for row in facts["significant"][:3]:
        out.working.append(f"{row.get('name')} passes the deflated Sharpe test (not explained by the number of trials)")
    if facts["designed"] or facts["tuned"]:
        out.working.append(f"research loop active: {facts['designed']} designed, {facts['tuned']} tuned, "
                           f"{facts['archived']} archived")

    for row in facts["bottom"]:
        value = finite_or_none(row.get("sharpe"))
        if value is None or value <= BAD_SHARPE:
            out.not_working.append(f"{_label(row)} loses out of sample")
    if facts["n_strategies"] and not facts["significant"]:
        out.not_working.append(f"none of {facts['n_strategies']} strategy results is significant after the "
                               "deflated Sharpe correction: the leaders may be luck among many trials")
    for item in facts["rejected"][:5]:
        if isinstance(item, Mapping):
            reasons = "; ".join(str(r) for r in (item.get("reasons") or []))[:160]
            out.not_working.append(f"candidate {item.get('name')} rejected: {reasons or 'no reason given'}")
    if facts["n_strategies"] == 0:
        out.not_working.append("no strategy was scored today")


def _concentration_and_drawdowns(facts: Mapping[str, Any], out: _Points) -> None:
    top_n = len(facts["top"])
    for what, counter in (("category", facts["top_categories"]), ("symbol", facts["top_symbols"])):
        if top_n >= 3 and counter:
            name, count = max(counter.items(), key=lambda kv: (kv[1], kv[0]))
            if count / top_n > CONCENTRATION_SHARE:
                out.risks.append(f"concentration: {count} of the top {top_n} share the {what} {name}")
                out.recommendations.append(f"diversify away from {what} {name}: design for other "
                                           f"{'categories' if what == 'category' else 'symbols'}")
    for row in facts["deep_drawdowns"][:3]:
        out.risks.append(f"deep drawdown: {_label(row)}")
    if facts["deep_drawdowns"]:
        out.recommendations.append("add a volatility or regime filter to the strategies with drawdowns "
                                   f"below {DEEP_DRAWDOWN:.0%}, or size them down")
    regimes = facts["regimes"]
    high_vol = sorted(s for s, r in regimes.items() if isinstance(r, Mapping) and r.get("volatility") == "high")
    if high_vol:
        out.risks.append(f"high volatility regime on {', '.join(high_vol)}: wider swings, costlier mistakes")


def _categories(facts: Mapping[str, Any], out: _Points) -> None:
    cat_scores = facts["category_scores"]
    if len(cat_scores) >= 2:
        best_cat = max(cat_scores, key=lambda c: (cat_scores[c], c))
        worst_cat = min(cat_scores, key=lambda c: (cat_scores[c], c))
        if cat_scores[best_cat] > 0:
            out.working.append(f"category {best_cat} has the best mean score ({cat_scores[best_cat]:.2f} over "
                               f"{facts['categories'].get(best_cat, 0)} results)")
        if cat_scores[worst_cat] < 0:
            out.not_working.append(f"category {worst_cat} has the worst mean score ({cat_scores[worst_cat]:.2f} "
                                   f"over {facts['categories'].get(worst_cat, 0)} results)")


def _regime_advice(facts: Mapping[str, Any], out: _Points) -> None:
    regimes, cat_scores = facts["regimes"], facts["category_scores"]
    trends = Counter(str(r.get("trend")) for r in regimes.values() if isinstance(r, Mapping))
    if not trends:
        return
    dominant, count = trends.most_common(1)[0]
    suited = {"range": ("mean_reversion",), "up": ("trend", "momentum"), "down": ("trend", "momentum")}
    favoured = suited.get(dominant, ())
    losing = [c for c in favoured if cat_scores.get(c) is not None and cat_scores[c] < 0]
    where = f"{count} of {len(regimes)} symbols {'are ranging' if dominant == 'range' else 'trend ' + dominant}"
    if losing:
        # The regime says one thing, the scores another: trust the out-of-sample evidence.
        out.recommendations.append(
            f"{where}, yet {', '.join(losing)} strategies lose on average "
            f"({', '.join(f'{cat_scores[c]:.2f}' for c in losing)}): the regime label alone is no edge "
            "here; prefer what scores out of sample and re-check the regime filters")
    elif dominant == "range":
        out.recommendations.append(f"{where}: favour mean-reversion candidates and filter trend followers "
                                   "with a trend-strength check")
    elif dominant in ("up", "down"):
        out.recommendations.append(f"{where}: favour trend and momentum candidates, keep mean reversion on a "
                                   "range filter")


def _coverage_advice(facts: Mapping[str, Any], out: _Points) -> None:
    missing = [c for c in CATEGORIES if c not in facts["categories"]]
    if facts["n_strategies"] and missing:
        out.recommendations.append(f"no scored strategy in {', '.join(missing)}: the designer should target them")
    still_kept = list(dict.fromkeys(str(r.get("name")) for r in facts["bottom"] if r.get("decision") != "archived"))
    if still_kept:  # the ones the ranking archived today need no advice
        out.recommendations.append("tune or archive the bottom performers still kept: " + ", ".join(still_kept[:3]))
    if facts["synthetic"]:
        out.risks.append("results are on SYNTHETIC sample data, not exchange data: no conclusion about real markets")


def rule_based_review(day: Mapping[str, Any]) -> dict[str, Any]:
    """Offline review from the day's facts, labelled {"mode": "rule-based"}."""
    facts = day_facts(day)
    out = _Points()
    for rule in (_leaders_and_losers, _concentration_and_drawdowns, _categories, _regime_advice, _coverage_advice):
        rule(facts, out)
    if not out.working:
        out.working.append("nothing clearly working today")
    if not out.risks:
        out.risks.append("no specific risk flagged by the rules today")
    if not out.recommendations:
        out.recommendations.append("keep the current portfolio; no rule triggered a change")

    leader = _label(facts["top"][0]) if facts["top"] else "no strategy"
    summary = (f"{day.get('date') or day.get('run_date') or 'today'}: {facts['n_strategies']} strategies; "
               f"leader {leader}; {facts['designed']} designed, {facts['tuned']} tuned, {facts['archived']} archived; "
               f"{len(facts['significant'])} significant after deflation"
               + ("; SYNTHETIC data" if facts["synthetic"] else "") + ".")
    return {
        "mode": "rule-based",
        "summary": summary,
        "working": out.working,
        "not_working": out.not_working,
        "risks": out.risks,
        "recommendations": out.recommendations,
        "facts": _public_facts(facts),
    }


def _public_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-friendly subset of the facts, stored with the review."""
    return {
        "n_strategies": facts["n_strategies"],
        "top": [_label(r) for r in facts["top"]],
        "bottom": [_label(r) for r in facts["bottom"]],
        "top_categories": facts["top_categories"],
        "top_symbols": facts["top_symbols"],
        "category_scores": {c: round(v, 4) for c, v in facts["category_scores"].items()},
        "deep_drawdowns": [_label(r) for r in facts["deep_drawdowns"]],
        "n_significant": len(facts["significant"]),
        "designed": facts["designed"], "tuned": facts["tuned"], "archived": facts["archived"],
        "synthetic": facts["synthetic"],
    }


def review_prompt_context(day: Mapping[str, Any]) -> dict[str, Any]:
    """The context `llm.prompts.build_review_prompt` expects (the day as the report)."""
    report = {k: v for k, v in day.items() if k != "regimes"}
    report["facts"] = _public_facts(day_facts(day))
    return {"report": report, "regimes": dict(day.get("regimes") or {})}


def llm_review(day: Mapping[str, Any], llm: LLMCaller, *, model: str | None = None,
               prefix: DayPrefix | None = None) -> dict[str, Any]:
    """Review through the LLM, labelled {"mode": "llm", "model": model}."""
    from blofin_pipeline.llm.prompts import build_review_prompt
    from blofin_pipeline.llm.schemas import ReviewReply

    prompt = build_review_prompt(review_prompt_context(day), prefix)
    reply = llm("review", prompt, ReviewReply)
    out = {
        "mode": "llm",
        "model": model,
        "summary": reply.summary,
        "working": list(reply.working),
        "not_working": list(reply.not_working),
        "risks": list(reply.risks),
        "recommendations": list(reply.recommendations),
        "facts": _public_facts(day_facts(day)),
    }
    logger.info("review (llm, %s): %d working, %d not working, %d risks, %d recommendations",
                out["model"], len(out["working"]), len(out["not_working"]), len(out["risks"]),
                len(out["recommendations"]))
    return out


def unavailable_reason(err: LLMError) -> str:
    """Why the LLM review could not be had, in a word and the error: budget, invalid reply, API."""
    if isinstance(err, LLMBudgetExceeded):
        kind = "LLM budget spent"
    elif isinstance(err, LLMResponseError):
        kind = "LLM reply invalid"
    else:
        kind = "LLM API unavailable"
    return f"{kind}: {err}"


def review_day(day: Mapping[str, Any], *, llm: LLMCaller | None = None, model: str | None = None,
               prefix: DayPrefix | None = None) -> dict[str, Any]:
    """`llm_review` when an LLM caller is given (`model`: its review model), else `rule_based_review`.

    When the LLM review cannot be had (budget spent, API down, reply still invalid after its
    retry) the day still gets its review: the rule-based one, labelled with the reason
    (`fallback_reason`) and the model that was asked.
    """
    if llm is None:
        return rule_based_review(day)
    try:
        return llm_review(day, llm, model=model, prefix=prefix)
    except LLMError as err:
        reason = unavailable_reason(err)
        logger.warning("review: %s; writing the rule-based review instead", reason)
        return dict(rule_based_review(day), fallback_reason=reason, model_asked=model)
