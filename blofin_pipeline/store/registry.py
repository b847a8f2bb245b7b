"""The strategy registry's rows (table ``strategies``), their status history
(``strategy_status_history``) and the research trials behind the deflated Sharpe ratio
(table ``research_trials``).

Rows come back as stored (params, param_space as JSON text); the rules of registration
and the record type are ``strategies.registry``'s.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.exceptions import StoreError
from blofin_pipeline.store.connection import utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

LAST_DATE = "9999-12-31"  # a run date after every other: trial_count(store, LAST_DATE) counts all
REGISTER_ATTEMPTS = 5     # tries of a registration that loses races for the next version


def status_rows_at(store: Store, run_date: str, seq: int) -> list[dict[str, Any]]:
    """Every version with its status at a point of ``run_date``: after the entries of that
    date up to step ``seq`` (-1: as the date started). ``status``, ``status_from`` and
    ``status_reason`` are that point's; versions that did not exist yet are left out."""
    return store.query_named("registry_status_at", {"run_date": run_date, "seq": seq})


def strategy_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first."""
    return store.query_named("registry_versions", {"name": name})


def strategy_version(store: Store, name: str, version: int) -> dict[str, Any] | None:
    """One version's row, or None."""
    rows = store.query_named("registry_version", {"name": name, "version": version})
    return rows[0] if rows else None


def strategy_with_hash(store: Store, name: str, code_hash: str) -> dict[str, Any] | None:
    """The version of ``name`` registered with this code hash, or None."""
    rows = store.query_named("registry_with_hash", {"name": name, "code_hash": code_hash})
    return rows[0] if rows else None


def strategy_index(store: Store) -> list[dict[str, Any]]:
    """Every version without its code: name, version, category, status, origin,
    code_hash, created_run_date."""
    return store.query_named("registry_index")


def register_version(store: Store, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The version of ``row["name"]`` with ``row["code_hash"]``: the stored one, or ``row``
    (every column but version) inserted as the next version. Returns (row, inserted).

    The check and the insert are one transaction (SQLite: under the write lock); on
    PostgreSQL a concurrent writer of the same code or version makes the insert a no-op
    (unique (name, code_hash), primary key (name, version)) and the next attempt finds
    its row, so racing processes all get one version.
    """
    name, digest = row["name"], row["code_hash"]
    for _ in range(REGISTER_ATTEMPTS):
        with store.transaction():
            existing = strategy_with_hash(store, name, digest)
            if existing is not None:
                return existing, False
            version = int(store.scalar_named("registry_max_version", {"name": name}) or 0) + 1
            inserted = store.execute_named("registry_insert_version",
                                           {"fitted_until": None, **row, "version": version})
        if inserted:
            return strategy_version(store, name, version) or {}, True
    raise StoreError(f"strategy {name!r}: could not register a version after {REGISTER_ATTEMPTS} attempts "
                     "(concurrent writers kept taking the next version)")


def add_status_entry(store: Store, row: Mapping[str, Any]) -> None:
    """Write one status history entry (name, version, from_date, seq, step, status, reason),
    keyed by (name, version, from_date, seq), and bring the version's cached status up to
    date, in one transaction."""
    with store.transaction():
        store.upsert("strategy_status_history", [{**row, "created_at": utc_now()}],
                     key=("name", "version", "from_date", "seq"), update=("step", "status", "reason"))
        store.execute_named("registry_refresh_status", {"name": row["name"], "version": row["version"]})


def status_entries(store: Store, from_date: str, step: str) -> list[dict[str, Any]]:
    """The entries ``step`` wrote for the run date (name, version, status, reason)."""
    return store.query_named("registry_status_entries", {"from_date": from_date, "step": step})


def delete_status_entry(store: Store, name: str, version: int, from_date: str, step: str) -> None:
    """Withdraw the entry ``step`` wrote for one version on the run date; refresh its status."""
    with store.transaction():
        store.execute_named("registry_status_delete", {"name": name, "version": version, "from_date": from_date,
                                                       "step": step})
        store.execute_named("registry_refresh_status", {"name": name, "version": version})


def unused_versions_created_on(store: Store, run_date: str, origin: str) -> list[tuple[str, int]]:
    """Versions of ``origin`` registered on the run date that no other date has results or
    ranking decisions for."""
    rows = store.query_named("registry_unused_created_on", {"run_date": run_date, "origin": origin})
    return [(r["name"], int(r["version"])) for r in rows]


def delete_version(store: Store, name: str, version: int) -> None:
    """Delete a version and its status history."""
    with store.transaction():
        store.execute_named("registry_status_delete_version", {"name": name, "version": version})
        store.execute_named("registry_delete_version", {"name": name, "version": version})


def set_first_registration(store: Store, name: str, version: int, run_date: str, rationale: str | None,
                           fitted_until: str | None = None) -> None:
    """Make an earlier run date that registered the same code the version's registration
    date (with that date's rationale and fitted_until)."""
    store.execute_named("registry_set_first_registration", {"name": name, "version": version, "run_date": run_date,
                                                            "rationale": rationale, "fitted_until": fitted_until})


def registered_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Versions registered by the run date (name, version, category, origin, status,
    parent, archive_reason)."""
    return store.query_named("registry_registered_on", {"run_date": run_date})


def category_status_counts(store: Store) -> list[dict[str, Any]]:
    """The registry's size by category and status (category, status, n)."""
    return store.query_named("registry_counts")


# -- research trials -------------------------------------------------------------------
def record_trials(store: Store, run_date: str, trials: Iterable[tuple[str, int]]) -> None:
    """Record the out-of-sample series each item was evaluated on for a decision on the run
    date: ``[(item, n_symbols), ...]``, one series per symbol. Items are unique across
    origins: strategy versions ``name@version``; ML model types and ensemble methods ``ml:<kind>``
    (`steps.ml.ml_trials`). Recording an item again on the same date replaces its count."""
    rows = [{"run_date": run_date, "item": item, "n_series": int(n)} for item, n in trials]
    for row in rows:
        if row["n_series"] < 1:
            raise ValueError(f"record_trials: {row['item']!r} on {run_date}: n_symbols must be >= 1, "
                             f"got {row['n_series']}")
    store.upsert("research_trials", rows, key=("run_date", "item"))


def trial_count(store: Store, run_date: str, day_items: Iterable[tuple[str, int]] | None = None) -> int:
    """The deflated Sharpe ratio's number of trials N on a run date (issue 11, decision 6).

    N = distinct (item, symbol) out-of-sample series evaluated for a decision on or before
    the date, all origins: each item counted once, at the most symbols it was evaluated
    on (on the dates before ``run_date``, or in ``day_items``). Parameter candidates and
    Optuna trials are fitted on training parts only and never looked at out of sample:
    not counted. ``day_items`` are the date's own ``(item, n_symbols)`` the caller's decision
    covers; None takes every series recorded on the date (the date's final N, as the report
    shows it). Dates after ``run_date`` never count, so the figure does not depend on the
    order in which dates are run or backfilled.
    """
    earlier = store.query_named("registry_trials_before", {"run_date": run_date})
    series = {r["item"]: int(r["n_series"]) for r in earlier}
    today = trials_on(store, run_date) if day_items is None else dict(day_items)
    for item, n in today.items():
        series[item] = max(series.get(item, 0), int(n))
    return sum(series.values())


def trials_on(store: Store, run_date: str) -> dict[str, int]:
    """{item: n_series} recorded on the run date."""
    return {r["item"]: int(r["n_series"]) for r in store.query_named("registry_trials_on_date", {"run_date": run_date})}


def items_with_trials_on(store: Store, run_date: str) -> set[str]:
    """Items that recorded trials on the run date."""
    return set(trials_on(store, run_date))


def delete_trials(store: Store, run_date: str, items: Iterable[str]) -> None:
    """Withdraw the trials the items recorded on the run date."""
    with store.transaction():
        for item in items:
            store.execute_named("registry_trials_delete", {"run_date": run_date, "item": item})
