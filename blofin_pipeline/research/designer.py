"""The designer: new strategy candidates that fill the portfolio's coverage gaps.

Two modes, same output (a list of `Candidate`, checked and scored later by the lead's
`backtest_candidates` step):

* offline (``llm=None``, the embedded default): compose new strategy files from the
  building blocks of `research.blocks`, one per top coverage gap category, chosen by a
  random generator seeded with (seed, run date) so a run is reproducible and each day
  explores something new. Names and code hashes already tried are never proposed again,
  blocks that appear in the bottom performers or in rejected candidates are avoided, and
  when a screening frame is given each composition must actually trade on it.
* online: the context (gaps, regimes, top and bottom performers with metrics, parameters
  and code, rejected candidates' feedback) goes into `llm.prompts.build_design_prompt`;
  the `llm` caller returns a `DesignReply`, whose strategies become candidates (exact
  duplicates of tried names or code are dropped).

The `llm` argument is an `LLMCaller` (`blofin_pipeline.llm.caller`): it returns the
validated `DesignReply`; the steps pass the structured caller built on the LLM hook, tests
pass a double.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import ConfigError, StrategyError
from blofin_pipeline.research.blocks import (
    SIGNAL_BLOCKS,
    Composition,
    block_categories,
    draw_composition,
    render_strategy,
)
from blofin_pipeline.research.candidates import Candidate, rng_for, short_hash
from blofin_pipeline.research.gaps import coverage_gaps, gap_categories
from blofin_pipeline.research.reconcile import Reconciled, reconcile
from blofin_pipeline.strategies import CATEGORIES, code_hash

if TYPE_CHECKING:
    from blofin_pipeline.llm.caller import LLMCaller
    from blofin_pipeline.llm.prefix import DayPrefix

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 60          # draws per candidate before giving up on a category
MIN_EXPOSURE = 0.02        # screening: a candidate must hold a position on >= 2 % of bars
MIN_POSITION_CHANGES = 4   # ... and change its position at least this often
N_PERFORMERS = 3           # top and bottom performers shown to the LLM
N_PROMPT_GAPS = 12         # gaps quoted in the prompt


@dataclass(frozen=True)
class DesignContext:
    """What the designer knows on a run date.

    strategies: the portfolio, dicts with name, category, scores {symbol: score} and
        optionally metrics, params, code (for the performers shown to the LLM).
    regimes: {symbol: detect_regime(...)}.
    gaps: precomputed `coverage_gaps` (computed from the above when None).
    tried_names / tried_hashes: every strategy name and code hash ever registered or
        rejected; never proposed again.
    rejected: knowledge-base feedback, dicts with name, reasons (and date).
    screen_candles: optional frame on which offline compositions must trade at all.
    """

    run_date: str
    symbols: tuple[str, ...]
    regimes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    strategies: tuple[Mapping[str, Any], ...] = ()
    gaps: tuple[Mapping[str, Any], ...] | None = None
    categories: tuple[str, ...] = CATEGORIES
    tried_names: frozenset[str] = frozenset()
    tried_hashes: frozenset[str] = frozenset()
    rejected: tuple[Mapping[str, Any], ...] = ()
    screen_candles: pd.DataFrame | None = None
    min_score: float = 0.0

    def resolved_gaps(self) -> list[dict[str, Any]]:
        if self.gaps is not None:
            return [dict(g) for g in self.gaps]
        return coverage_gaps(list(self.strategies), self.regimes, self.symbols, self.categories,
                             min_score=self.min_score)


def mean_score(strategy: Mapping[str, Any]) -> float:
    """Mean of a strategy's finite per-symbol scores (NaN when it has none)."""
    values = []
    for value in (strategy.get("scores") or {}).values():
        if isinstance(value, Mapping):
            value = value.get("score")
        if value is not None and math.isfinite(float(value)):
            values.append(float(value))
    return float(np.mean(values)) if values else float("nan")


def performers(strategies: Sequence[Mapping[str, Any]], n: int = N_PERFORMERS
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(top n, bottom n) strategies by mean score, as name/category/score/metrics/params/code."""
    scored = [(mean_score(s), s) for s in strategies]
    scored = [(v, s) for v, s in scored if math.isfinite(v)]
    scored.sort(key=lambda item: (-item[0], str(item[1].get("name"))))

    def slim(value: float, s: Mapping[str, Any]) -> dict[str, Any]:
        out = {"name": s.get("name"), "category": s.get("category"), "score": round(value, 4)}
        for key in ("metrics", "params", "param_space", "code"):
            if s.get(key) is not None:
                out[key] = s[key]
        return out

    top = [slim(v, s) for v, s in scored[:n]]
    bottom_pool = scored[n:] if len(scored) > n else []
    bottom = [slim(v, s) for v, s in reversed(bottom_pool[-n:])]
    return top, bottom


# --- offline --------------------------------------------------------------------

def _target_categories(context: DesignContext, gaps: list[dict[str, Any]], n: int) -> list[str]:
    """Gap categories by priority (only those the blocks can build), then the rest."""
    buildable = [c for c in context.categories if c in block_categories()]
    if not buildable:
        raise ConfigError(f"designer: none of the categories {context.categories} has building blocks")
    ordered = gap_categories([g for g in gaps if g["category"] in buildable], len(buildable))
    # Categories without a gap still get explored, least populated first.
    counts = {c: sum(1 for s in context.strategies if s.get("category") == c) for c in buildable}
    ordered += sorted((c for c in buildable if c not in ordered), key=lambda c: (counts[c], c))
    return ordered


def _avoided_blocks(context: DesignContext) -> set[str]:
    """Signal-block keys seen in the bottom performers' and the rejected candidates' names."""
    _, bottom = performers(list(context.strategies))
    names = [str(p.get("name", "")) for p in bottom] + [str(r.get("name", "")) for r in context.rejected]
    return {b.key for b in SIGNAL_BLOCKS for name in names if f"_{b.key}_" in f"_{name}_"}


def _screen(code: str, name: str, candles: pd.DataFrame) -> str | None:
    """None when the composition trades on `candles`, else why it is dropped. The code
    runs in the strategy sandbox, like every designed file."""
    from blofin_pipeline.strategies.runner import signal_function

    try:
        with signal_function(code, origin="designer", label=name) as fn:
            positions = fn(candles)
    except StrategyError as err:
        return f"failed in the sandbox: {err}"
    exposure = float((positions.abs() > 0).mean())
    changes = int((positions.diff().abs() > 0).sum())
    if exposure < MIN_EXPOSURE or changes < MIN_POSITION_CHANGES:
        return f"exposure {exposure:.3f}, {changes} position changes"
    return None


def _rationale(category: str, comp: Composition, gaps: list[dict[str, Any]],
               regimes: Mapping[str, Mapping[str, Any]], avoided: set[str]) -> str:
    cells = [g for g in gaps if g["category"] == category][:3]
    if cells:
        where = "; ".join(f"{g['symbol']} in regime {g['regime']} ({g['reason'].split(' (regime')[0]})"
                          for g in cells)
        text = f"Fills the {category} coverage gap: {where}."
    else:
        text = f"No open gap for {category}; adds diversity to the least populated category."
    text += f" Rule: {comp.describe()}."
    if comp.filter is not None:
        text += f" The {comp.filter.key} filter keeps it out of the regime its rule does not suit."
    states = sorted({f"{r.get('trend')}/{r.get('volatility')}" for r in regimes.values()})
    if states:
        text += f" Current regimes: {', '.join(states)}."
    if avoided:
        text += f" Avoids blocks of bottom performers or rejected candidates ({', '.join(sorted(avoided))})."
    return text


def _offline_candidate(comp: Composition, name: str, code: str, rationale: str, gaps: list[dict[str, Any]],
                       run_date: str, seed: int) -> Candidate:
    category = comp.category
    return Candidate(
        name=name, category=category, code=code, rationale=rationale, origin="designer",
        params=dict(comp.params),
        meta={"mode": "offline", "blocks": comp.blocks_tag, "signal": comp.signal.key,
              "filter": comp.filter.key if comp.filter else None, "direction": comp.direction,
              "gaps": [f"{g['category']}|{g['regime']}|{g['symbol']}" for g in gaps
                       if g["category"] == category][:5],
              "run_date": run_date, "seed": seed},
    )


def design_offline(context: DesignContext, n: int = 3, *, seed: int = 0) -> list[Candidate]:
    """Compose `n` new strategies from building blocks for the top gap categories."""
    if n < 0:
        raise ConfigError(f"designer: n must be >= 0, got {n}")
    gaps = context.resolved_gaps()
    targets = _target_categories(context, gaps, n)
    avoided = _avoided_blocks(context)
    rng = rng_for(seed, context.run_date, "design")
    taken_names = set(context.tried_names) | {str(s.get("name")) for s in context.strategies}
    taken_hashes = set(context.tried_hashes)
    used_signals: set[str] = set()
    out: list[Candidate] = []
    for i in range(n):
        category = targets[i % len(targets)]
        candidate = None
        dropped: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            comp = draw_composition(category, rng)
            # Soft preferences, relaxed in the second half of the attempts.
            strict = attempt < MAX_ATTEMPTS // 2
            if strict and (comp.signal.key in avoided or comp.signal.key in used_signals):
                continue
            fingerprint = repr((comp.category, comp.blocks_tag, sorted(comp.params.items())))
            name = f"{category}_{comp.blocks_tag}_{short_hash(fingerprint)}"
            if name in taken_names:
                continue
            rationale = _rationale(category, comp, gaps, context.regimes, avoided)
            # The code is the composition's alone (the day's rationale goes to the registry):
            # a name stands for one code whichever date designs it first (a backfill).
            code = render_strategy(comp, name)
            digest = code_hash(code)
            if digest in taken_hashes:
                continue
            if context.screen_candles is not None:
                why = _screen(code, name, context.screen_candles)
                if why is not None:
                    dropped.append(f"{name}: {why}")
                    taken_names.add(name)
                    continue
            candidate = _offline_candidate(comp, name, code, rationale, gaps, context.run_date, seed)
            break
        if dropped:
            logger.info("designer: %d %s compositions did not trade on the screening data (%s)",
                        len(dropped), category, "; ".join(dropped[:3]))
        if candidate is None:
            logger.warning("designer: no new %s composition after %d draws", category, MAX_ATTEMPTS)
            continue
        taken_names.add(candidate.name)
        taken_hashes.add(candidate.code_hash)
        used_signals.add(str(candidate.meta["signal"]))
        out.append(candidate)
        logger.info("designer (offline): %s [%s] %s", candidate.name, category, candidate.meta["blocks"])
    return out


# --- online ---------------------------------------------------------------------

def design_prompt_context(context: DesignContext, n: int) -> dict[str, Any]:
    """The plain-dict context `llm.prompts.build_design_prompt` expects."""
    gaps = context.resolved_gaps()
    top, bottom = performers(list(context.strategies))
    portfolio = {
        "strategies": [
            {"name": s.get("name"), "category": s.get("category"),
             "mean_score": None if math.isnan(mean_score(s)) else round(mean_score(s), 4)}
            for s in context.strategies
        ],
        "gaps": [{k: g[k] for k in ("category", "regime", "symbol", "priority", "reason")}
                 for g in gaps[:N_PROMPT_GAPS]],
    }
    regimes = {
        sym: {k: r.get(k) for k in ("trend", "volatility", "efficiency_ratio", "ma_slope", "vol_percentile")
              if k in r}
        for sym, r in sorted(context.regimes.items())
    }
    return {
        "portfolio": portfolio,
        "regimes": regimes,
        "top_performers": top,
        "bottom_performers": bottom,
        "rejected": [dict(r) for r in context.rejected],
        "categories": list(context.categories),
        "n_strategies": n,
    }


def design_online(context: DesignContext, n: int, llm: LLMCaller, *, prefix: DayPrefix | None = None
                  ) -> list[Candidate]:
    """Ask the LLM for `n` strategies; reconcile each file with its reply (name, category,
    params); drop names or code already tried or repeated. `prefix`: the day's shared one."""
    from blofin_pipeline.llm.prompts import build_design_prompt
    from blofin_pipeline.llm.schemas import DesignReply

    allowed = list(context.categories)
    prompt = build_design_prompt(design_prompt_context(context, n), prefix)
    reply = llm("design", prompt, DesignReply, categories=allowed)
    taken_names = set(context.tried_names) | {str(s.get("name")) for s in context.strategies}
    taken_hashes = set(context.tried_hashes)
    out: list[Candidate] = []
    for designed in reply.strategies[:n]:
        try:
            fixed = reconcile(designed.code, name=designed.name, category=designed.category)
        except StrategyError as err:
            # unreadable code: registered as it came, so the checks reject it with their reasons
            logger.warning("designer (llm): %r not reconciled: %s", designed.name, err)
            fixed = Reconciled(designed.code, {}, {}, [f"not reconciled: {err}"])
        digest = code_hash(fixed.code)
        if designed.name in taken_names or digest in taken_hashes:
            logger.info("designer (llm): dropped %r, name or code already tried", designed.name)
            continue
        out.append(Candidate(
            name=designed.name, category=designed.category, code=fixed.code, rationale=designed.rationale,
            origin="designer", params=fixed.params,
            meta={"mode": "llm", "run_date": context.run_date, "reconciled": fixed.changes},
        ))
        taken_names.add(designed.name)
        taken_hashes.add(digest)
    logger.info("designer (llm): %d of %d proposed strategies kept", len(out), len(reply.strategies))
    return out


def design(context: DesignContext, n: int = 3, *, llm: LLMCaller | None = None, seed: int = 0,
           prefix: DayPrefix | None = None) -> list[Candidate]:
    """New candidates for the run: offline from building blocks, or through the LLM."""
    if llm is None:
        return design_offline(context, n, seed=seed)
    return design_online(context, n, llm, prefix=prefix)

