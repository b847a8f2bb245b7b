"""The ranking audit log (table ``ranking_history``): one decision per run date, item
type (strategy, model, ensemble) and item."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store


def upsert_decisions(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write decisions keyed by (run_date, item_type, item); ``created_at`` keeps the time
    of the first decision."""
    return store.upsert("ranking_history", rows, key=("run_date", "item_type", "item"),
                        update=("metric", "value", "rank", "decision", "reason"))


def decisions_for(store: Store, run_date: str, item_type: str) -> list[dict[str, Any]]:
    """The decisions of one item type on the run date (item, metric, value, rank, decision,
    reason), by rank."""
    return store.query_named("rankings_for_date_and_type", {"run_date": run_date, "item_type": item_type})


def decisions_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Every decision of the run date, with its item type."""
    return store.query_named("rankings_on_date", {"run_date": run_date})


def delete_decision(store: Store, run_date: str, item_type: str, item: str) -> None:
    """Withdraw one decision of the run date."""
    store.execute_named("rankings_delete_item", {"run_date": run_date, "item_type": item_type, "item": item})


def latest_ranked_date(store: Store) -> str | None:
    """The latest run date on which strategies were ranked."""
    return store.scalar_named("rankings_latest_date")


def previous_ranked_date(store: Store, run_date: str) -> str | None:
    """The latest run date before ``run_date`` on which strategies were ranked."""
    return store.scalar_named("rankings_previous_date", {"run_date": run_date})


def decision_counts(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Strategy decisions per run date up to ``run_date`` (run_date, decision, n)."""
    return store.query_named("rankings_counts", {"run_date": run_date})


def archived_since(store: Store, since: str, run_date: str) -> list[dict[str, Any]]:
    """Strategies the ranking archived from ``since`` up to the day before ``run_date`` (run_date,
    item, reason), newest first."""
    return store.query_named("rankings_archived_since", {"since": since, "run_date": run_date})
