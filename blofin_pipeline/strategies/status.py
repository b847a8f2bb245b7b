"""Strategy statuses in time: the status history and the registry as it was at a point
of a run date (rows in `store.registry`).

Every status a version ever had is an entry ``(name, version, from_date, seq)``: it holds
from the run date ``from_date`` on, and the entries of one date apply in the order of the
steps that wrote them (:data:`STATUS_STEPS`). A decision for a date reads the registry at
its point of that date (:func:`statuses_at`), never the registry of today, so

- a backfill of an earlier date does not see what later dates registered or archived,
- a re-run of an older date writes entries of that date only and cannot re-activate what
  a later date archived,
- a step re-run for a date first withdraws its own entries of that date
  (:func:`withdraw_statuses`): its decisions replace the earlier ones instead of adding.

``strategies.status`` caches each version's latest entry (the registry of today: the CLI,
`add-strategy`).
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store.registry import (
    add_status_entry,
    delete_status_entry,
    delete_version,
    status_entries,
    status_rows_at,
    unused_versions_created_on,
)

if TYPE_CHECKING:
    from blofin_pipeline.store import Store
    from blofin_pipeline.strategies.registry import StrategyRecord

logger = logging.getLogger(__name__)

STATUSES = ("candidate", "active", "archived")
ALWAYS = "0001-01-01"   # from_date of a status that holds on every run date (built-ins)
# The steps that write statuses, in the order of a day.
STATUS_STEPS = {"builtin": 0, "user": 0, "score_strategies": 1, "design_strategies": 2, "tune_strategies": 2,
                "train_ml_models": 2, "backtest_candidates": 3, "rank_and_update": 4, "manual": 5}
AT_START = -1                          # seq "before any step of the date"
AT_END = max(STATUS_STEPS.values())    # seq "after every step of the date"
# Which step registers a version of each origin (its first status entry).
REGISTERING_STEP = {"builtin": "builtin", "user": "user", "designer": "design_strategies",
                    "tuner": "tune_strategies", "ml": "train_ml_models"}


def set_status(store: Store, name: str, version: int, status: str, reason: str | None = None, *,
               run_date: str, step: str) -> None:
    """Record that ``step`` moved a version to ``status`` from ``run_date`` on (the reason
    is kept for archivals only). Writing the same entry again changes nothing."""
    if status not in STATUSES:
        raise StrategyError(f"unknown strategy status {status!r}")
    if step not in STATUS_STEPS:
        raise StrategyError(f"step {step!r} does not write strategy statuses")
    add_status_entry(store, {"name": name, "version": int(version), "from_date": run_date,
                             "seq": STATUS_STEPS[step], "step": step, "status": status,
                             "reason": reason if status == "archived" else None})


def withdraw_statuses(store: Store, run_date: str, step: str, refs: Collection[str] | None = None, *,
                      except_refs: Collection[str] = ()) -> list[str]:
    """Withdraw the entries ``step`` wrote for ``run_date`` (only those of ``refs`` when
    given, never those of ``except_refs``): the step is about to decide the date again.
    Returns the refs withdrawn."""
    withdrawn = []
    for row in status_entries(store, run_date, step):
        ref = f"{row['name']}@{row['version']}"
        if (refs is None or ref in refs) and ref not in except_refs:
            delete_status_entry(store, row["name"], int(row["version"]), run_date, step)
            withdrawn.append(ref)
    return withdrawn


def withdraw_registrations(store: Store, run_date: str, origin: str) -> list[str]:
    """Before a research step registers the date's candidates again: withdraw its status
    entries of the date and delete the versions of ``origin`` it registered on the date
    that no other date used. Returns the deleted refs."""
    withdraw_statuses(store, run_date, REGISTERING_STEP[origin])
    deleted = []
    for name, version in unused_versions_created_on(store, run_date, origin):
        delete_version(store, name, version)
        deleted.append(f"{name}@{version}")
    if deleted:
        logger.info("re-run of %s: withdrew %d %s version(s) only it had registered: %s",
                    run_date, len(deleted), origin, ", ".join(deleted))
    return deleted


def statuses_at(store: Store, run_date: str, seq: int = AT_START) -> list[StrategyRecord]:
    """Every version that existed at that point of ``run_date``, with its status then
    (after the date's entries up to ``seq``; ``AT_START``: as the date started)."""
    from blofin_pipeline.strategies.registry import record_from_row

    return [record_from_row(r) for r in status_rows_at(store, run_date, seq)]


def portfolio_at_start(store: Store, run_date: str) -> list[StrategyRecord]:
    """The rule-file versions active when ``run_date`` started: what the date scores.
    (ML ensembles are scored by train_ml_models from their out-of-sample positions.)"""
    return [r for r in statuses_at(store, run_date) if r.status == "active" and r.origin != "ml"]


def candidates_on(store: Store, run_date: str) -> list[StrategyRecord]:
    """The versions waiting for their checks after the date's research: registered by it,
    or before it and not checked yet (a user's file)."""
    return [r for r in statuses_at(store, run_date, STATUS_STEPS["train_ml_models"]) if r.status == "candidate"]


def active_before_ranking(store: Store, run_date: str) -> list[StrategyRecord]:
    """Every version active when the date's ranking starts, ML ensembles included: the
    ranking decides on each of them."""
    return [r for r in statuses_at(store, run_date, STATUS_STEPS["backtest_candidates"]) if r.status == "active"]


def statuses_on(store: Store, run_date: str) -> dict[str, StrategyRecord]:
    """Every version with its status at the end of ``run_date``, by ref (the report)."""
    return {r.ref: r for r in statuses_at(store, run_date, AT_END)}
