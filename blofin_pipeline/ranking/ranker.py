"""Dynamic ranking: no hard pass/fail, everything is ranked and only the top N are kept.

The specification's ``ranker.py`` API as functions over the data database:

- :func:`keep_top_strategies` ranks the strategy versions active on the run date,
- :func:`keep_top_models` ranks the run date's ML model types (by F1 by default),
- :func:`keep_top_ensembles` ranks the run date's ensemble methods (by accuracy by default),
  both on the mean over symbols of their per-symbol test-fold rows,
- :func:`archive_bottom` archives named items with a reason (a manual decision),
- :func:`rank` runs the three with the run's configuration,
- `ranking.leaderboard` reads a date's ranking back for the CLI.

Who takes part: every strategy version active when the date's ranking starts, read from
the status history at that point of the date (`strategies.status`): the portfolio at the
start of the date, the candidates accepted on it and the date's ML ensemble-as-strategy.
ML strategies are ranked like all others. A version's ranking value is the **mean over
symbols of the metric** (``score`` by default) in the date's ``strategy_backtest_results``,
over the symbols where it is a finite number; a version without one ranks last; a forward
record is blended in, and contradicting the backtest costs a version its place
(:mod:`blofin_pipeline.ranking.forward`).

Ordering: higher is better for every metric except ``log_loss``; missing values (NULL or
NaN) come last; ties are broken by the item name so the order is deterministic.

Each ranking first withdraws the date's earlier decisions of its item type
(:func:`withdraw_ranking`), so a re-run replaces them. Every decision is a ``ranking_history`` row keyed by
(run_date, item_type, item); an archived strategy gets a status entry from the run date on
(a re-run of an older date therefore never re-activates what a later date archived) and a
knowledge-base note with the reason; the log names every archived item and why.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blofin_pipeline.config import ML_METRICS, STRATEGY_METRICS
from blofin_pipeline.exceptions import ConfigError, PipelineError
from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.ranking.forward import ForwardSummary, blend, contradictions
from blofin_pipeline.store import utc_now
from blofin_pipeline.store.knowledge import add_knowledge, withdraw_notes_of_step
from blofin_pipeline.store.rankings import (
    decisions_for,
    delete_decision,
    upsert_decisions,
)
from blofin_pipeline.store.registry import (
    strategy_version,
    strategy_versions,
)
from blofin_pipeline.store.results import (
    ensemble_results_on,
    model_results_on,
    set_ensemble_status,
    set_model_status,
    strategy_results_for_ranking,
)
from blofin_pipeline.strategies.status import (
    active_before_ranking,
    set_status,
    withdraw_statuses,
)

if TYPE_CHECKING:
    from blofin_pipeline.config import PipelineConfig
    from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)

ITEM_TYPES = ("strategy", "model", "ensemble")
RANK_STEP = "rank_and_update"     # the step whose status entries and notes the ranking owns
LOWER_IS_BETTER = frozenset({"log_loss"})
MANUAL_METRIC = "manual"   # ranking_history.metric of an archive_bottom decision
UNRANKED = 0               # ranking_history.rank of an item archived without being ranked
RANKER_REASON = re.compile(r"^rank \d+ of \d+ by ")  # reasons written by rank_items, not by hand


@dataclass(frozen=True)
class RankDecision:
    """One ranking decision: what ``ranking_history`` stores for one item."""

    item: str
    metric: str
    value: float | None
    rank: int
    decision: str          # kept | archived
    reason: str

    @property
    def kept(self) -> bool:
        return self.decision == "kept"


@dataclass(frozen=True)
class RankingOutcome:
    """The decisions of one ranking of one kind of item on one run date."""

    item_type: str
    run_date: str
    metric: str
    count: int
    decisions: tuple[RankDecision, ...] = field(default_factory=tuple)

    @property
    def kept(self) -> list[str]:
        return [d.item for d in self.decisions if d.kept]

    @property
    def archived(self) -> list[str]:
        return [d.item for d in self.decisions if not d.kept]

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_type": self.item_type, "run_date": self.run_date, "metric": self.metric,
            "count": self.count, "ranked": len(self.decisions), "kept": self.kept, "archived": self.archived,
            "best": (
                {"item": self.decisions[0].item, "value": self.decisions[0].value} if self.decisions else None
            ),
        }


# -- pure ranking ----------------------------------------------------------------------
def format_value(value: float | None) -> str:
    return "no value" if value is None else f"{value:.4g}"


def rank_items(values: Mapping[str, Any], *, metric: str, count: int, notes: Mapping[str, str] | None = None,
               vetoed: Mapping[str, str] | None = None) -> list[RankDecision]:
    """Rank items by value (best first; missing last; ties by name) and keep the top ``count``; ``notes``
    go into the reasons, a ``vetoed`` item is archived whatever its rank (its place goes to the next)."""
    notes, vetoed = notes or {}, vetoed or {}
    if count < 0:
        raise ConfigError(f"ranking by {metric!r}: count must be >= 0, got {count!r}")
    lower_better = metric in LOWER_IS_BETTER
    cleaned = {item: finite_or_none(v) for item, v in values.items()}

    def order(item: str) -> tuple[bool, float, str]:
        v = cleaned[item]
        if v is None:
            return (True, 0.0, item)
        return (False, v if lower_better else -v, item)

    ordered = sorted(cleaned, key=order)
    total = len(ordered)
    decisions = []
    n_kept = 0
    for position, item in enumerate(ordered, start=1):
        kept = item not in vetoed and n_kept < count
        n_kept += kept
        where = f"within top {count}" if position <= count else \
            f"below top {count}{' but kept in the place of a vetoed item' if kept else ''}"
        value = format_value(cleaned[item]) + (f": {notes[item]}" if item in notes else "")
        reason = f"rank {position} of {total} by {metric} ({value}) {where}" + \
            (f"; archived: {vetoed[item]}" if item in vetoed else "")
        decisions.append(RankDecision(item, metric, cleaned[item], position, "kept" if kept else "archived", reason))
    return decisions


def _check_metric(metric: str, allowed: Sequence[str], what: str) -> None:
    if metric not in allowed:
        raise ConfigError(f"cannot rank {what} by {metric!r}: expected one of {', '.join(allowed)}")


# -- database helpers ------------------------------------------------------------------
def strategy_item(name: str, version: int | str) -> str:
    """The ranking_history item of a strategy version: ``name@version``."""
    return f"{name}@{int(version)}"


def split_strategy_item(item: str) -> tuple[str, int | None]:
    """``name@3`` -> (name, 3); ``name`` -> (name, None)."""
    name, sep, version = item.rpartition("@")
    if sep and version.isdigit():
        return name, int(version)
    return item, None


def _history_items(store: Store, run_date: str, item_type: str) -> dict[str, dict[str, Any]]:
    return {r["item"]: r for r in decisions_for(store, run_date, item_type)}


def _record(store: Store, run_date: str, item_type: str, decisions: Sequence[RankDecision]) -> None:
    now = utc_now()
    upsert_decisions(store, [{"run_date": run_date, "item_type": item_type, "item": d.item, "metric": d.metric,
                              "value": d.value, "rank": d.rank, "decision": d.decision, "reason": d.reason,
                              "created_at": now} for d in decisions])


def withdraw_ranking(store: Store, run_date: str, item_type: str) -> None:
    """Withdraw the date's earlier ranking of one item type: its decisions (not those taken
    by hand) and, for strategies, the status entries and archival notes it wrote. The
    ranking is about to run again and replace them."""
    with store.transaction():
        for d in decisions_for(store, run_date, item_type):
            if RANKER_REASON.match(d["reason"] or ""):
                delete_decision(store, run_date, item_type, d["item"])
        if item_type == "strategy":
            withdraw_statuses(store, run_date, RANK_STEP)
            withdraw_notes_of_step(store, run_date, "archived", RANK_STEP)


def _log_archived(item_type: str, run_date: str, decisions: Sequence[RankDecision]) -> None:
    for d in decisions:
        if not d.kept:
            logger.info("archived %s %s on %s: %s", item_type, d.item, run_date, d.reason)


# -- strategies ------------------------------------------------------------------------
def strategy_values(store: Store, run_date: str, metric: str = "score") -> dict[str, dict[str, Any]]:
    """Per strategy version scored on run_date: its aggregated metrics and registry fields.

    Returns ``{name@version: {name, version, category, status, symbols, value, score, sharpe,
    deflated_sharpe, max_drawdown, total_return, n_trades}}`` where ``value`` is the mean
    over symbols of ``metric``, the other metrics are means over symbols except
    ``max_drawdown``, the worst (lowest) over symbols, and ``n_trades``, the sum.
    """
    _check_metric(metric, STRATEGY_METRICS, "strategies")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in strategy_results_for_ranking(store, run_date):
        grouped.setdefault(strategy_item(row["strategy"], row["version"]), []).append(row)
    out = {}
    for item, rows in grouped.items():
        drawdowns = [v for v in (finite_or_none(r["max_drawdown"]) for r in rows) if v is not None]
        trades = [int(r["n_trades"]) for r in rows if r["n_trades"] is not None]
        out[item] = {
            "name": rows[0]["strategy"], "version": int(rows[0]["version"]), "category": rows[0]["category"],
            "status": rows[0]["status"], "symbols": [r["symbol"] for r in rows],
            "value": mean_of_finite(r[metric] for r in rows),
            **{m: mean_of_finite(r[m] for r in rows) for m in ("score", "sharpe", "deflated_sharpe", "total_return")},
            "max_drawdown": min(drawdowns) if drawdowns else None,
            "n_trades": sum(trades) if trades else None,
        }
    return out


def keep_top_strategies(store: Store, run_date: str, count: int = 20, metric: str = "score",
                        forward: Mapping[str, ForwardSummary] | None = None) -> RankingOutcome:
    """Rank the strategy versions active when the date's ranking starts; keep the top
    ``count`` active, archive the rest from the run date on (values blended with their
    ``forward`` records, contradicted ones vetoed: ``ranking.forward``)."""
    values = strategy_values(store, run_date, metric)
    withdraw_ranking(store, run_date, "strategy")
    by_hand = _history_items(store, run_date, "strategy")  # what is left: archived by hand on the date
    taking_part = {r.ref: r for r in active_before_ranking(store, run_date) if r.ref not in by_hand}
    blended, notes = blend({item: values.get(item, {}).get("value") for item in taking_part}, forward or {}, metric)
    decisions = rank_items(blended, metric=metric, count=count, notes=notes,
                           vetoed={k: v for k, v in contradictions(forward or {}).items() if k in taking_part})
    with store.transaction():
        _record(store, run_date, "strategy", decisions)
        for d in decisions:
            if d.kept:
                continue
            record = taking_part[d.item]
            set_status(store, record.name, record.version, "archived", d.reason, run_date=run_date, step=RANK_STEP)
            add_knowledge(store, run_date, "archived", d.item, {"reason": d.reason, "metric": metric, "value": d.value,
                                                                "rank": d.rank, "category": record.category,
                                                                "step": RANK_STEP})
    outcome = RankingOutcome("strategy", run_date, metric, count, tuple(decisions))
    logger.info("ranked %d strategy versions by %s on %s: kept %d, archived %d",
                len(decisions), metric, run_date, len(outcome.kept), len(outcome.archived))
    _log_archived("strategy", run_date, decisions)
    return outcome


# -- models and ensembles --------------------------------------------------------------
# item type -> (its name column, its kind column, the run date's rows, the status update)
_ML_ITEMS = {
    "model": ("model_name", "model_type", model_results_on, set_model_status),
    "ensemble": ("ensemble_name", "method", ensemble_results_on, set_ensemble_status),
}


def _keep_top_ml(store: Store, run_date: str, item_type: str, count: int, metric: str) -> RankingOutcome:
    """Rank the date's model types (or ensemble methods) on the MEAN over symbols of the
    metric of their per-symbol rows, as strategies are ranked; a decision applies to every
    symbol's row of the kind. No kind is judged on its best symbol."""
    _check_metric(metric, ML_METRICS, f"{item_type}s")
    name_column, kind_column, rows_on, set_item_status = _ML_ITEMS[item_type]
    withdraw_ranking(store, run_date, item_type)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows_on(store, run_date):
        by_kind.setdefault(r[kind_column], []).append(r)
    values = {kind: mean_of_finite(r[metric] for r in rows) for kind, rows in by_kind.items()}
    decisions = rank_items(values, metric=metric, count=count,
                           notes={k: f"mean over {len(rows)} symbol(s)" for k, rows in by_kind.items()})
    with store.transaction():
        _record(store, run_date, item_type, decisions)
        for d in decisions:
            for r in by_kind[d.item]:
                set_item_status(store, run_date, r[name_column], "active" if d.kept else "archived",
                                None if d.kept else d.reason)
    outcome = RankingOutcome(item_type, run_date, metric, count, tuple(decisions))
    logger.info("ranked %d %s kinds by mean %s over symbols on %s: kept %d, archived %d",
                len(decisions), item_type, metric, run_date, len(outcome.kept), len(outcome.archived))
    _log_archived(item_type, run_date, decisions)
    return outcome


def keep_top_models(store: Store, run_date: str, count: int = 5, metric: str = "f1") -> RankingOutcome:
    """Rank the run date's ML model types (mean over symbols); keep the top ``count``, archive the rest."""
    return _keep_top_ml(store, run_date, "model", count, metric)


def keep_top_ensembles(store: Store, run_date: str, count: int = 3, metric: str = "accuracy") -> RankingOutcome:
    """Rank the run date's ensemble methods (mean over symbols); keep the top ``count``, archive the rest."""
    return _keep_top_ml(store, run_date, "ensemble", count, metric)


# -- manual archival -------------------------------------------------------------------
def archive_bottom(store: Store, run_date: str, item_type: str, names: Iterable[str], reason: str) -> list[str]:
    """Archive the named items with ``reason`` and log the decision; returns what was archived.

    Strategies are named ``name@version`` (that version only) or ``name`` (every version
    not yet archived). Models and ensembles are the run date's rows of that name. The
    ranking_history row keeps the day's rank and metric when the item was ranked, else
    it gets metric ``manual`` and rank 0. Unknown names raise :class:`PipelineError`.
    """
    if item_type not in ITEM_TYPES:
        raise ConfigError(f"archive_bottom: item_type {item_type!r}: expected one of {ITEM_TYPES}")
    if not reason or not reason.strip():
        raise ConfigError("archive_bottom: a reason is required")
    names = list(names)
    existing = _history_items(store, run_date, item_type)
    decisions: list[RankDecision] = []
    archived: list[str] = []
    with store.transaction():
        for raw in names:
            targets = _archive_targets(store, run_date, item_type, raw)
            if not targets:
                raise PipelineError(f"archive_bottom: no {item_type} named {raw!r} to archive on {run_date}")
            for item, key in targets:
                if item_type == "strategy":
                    set_status(store, key[0], key[1], "archived", reason, run_date=run_date, step="manual")
                    add_knowledge(store, run_date, "archived", item, {"reason": reason, "manual": True, "step": "manual"})
                else:
                    _ML_ITEMS[item_type][3](store, run_date, item, "archived", reason)
                before = existing.get(item)
                decisions.append(RankDecision(
                    item,
                    before["metric"] if before else MANUAL_METRIC,
                    finite_or_none(before["value"]) if before else None,
                    int(before["rank"]) if before else UNRANKED,
                    "archived",
                    reason,
                ))
                archived.append(item)
        _record(store, run_date, item_type, decisions)
    logger.info("archived %d %s(s) on %s: %s (%s)", len(archived), item_type, run_date, ", ".join(archived), reason)
    return archived


def _archive_targets(store: Store, run_date: str, item_type: str, raw: str) -> list[tuple[str, tuple]]:
    if item_type == "strategy":
        name, version = split_strategy_item(raw)
        if version is not None:
            rows = [r for r in [strategy_version(store, name, version)] if r is not None]
        else:  # every version not archived yet, oldest first
            rows = [r for r in reversed(strategy_versions(store, name)) if r["status"] != "archived"]
        return [(strategy_item(r["name"], r["version"]), (r["name"], int(r["version"]))) for r in rows]
    name_column, _, rows_on, _ = _ML_ITEMS[item_type]
    return [(r[name_column], (r[name_column],)) for r in rows_on(store, run_date) if r[name_column] == raw]


# -- the step and the leaderboard ------------------------------------------------------
def rank(store: Store, run_date: str, config: PipelineConfig,
         forward: Mapping[str, ForwardSummary] | None = None) -> dict[str, Any]:
    """The ``rank_and_update`` step: strategies, models and ensembles with the run's counts and
    metrics, each replacing any earlier ranking of the date."""
    strategies = keep_top_strategies(store, run_date, config.top_strategies, config.strategy_metric, forward)
    models = keep_top_models(store, run_date, config.top_models, config.model_metric)
    ensembles = keep_top_ensembles(store, run_date, config.top_ensembles, config.ensemble_metric)
    return {"run_date": run_date, "strategies": strategies.to_dict(), "models": models.to_dict(),
            "ensembles": ensembles.to_dict()}
