"""The strategy registry: every version with its code and hash (rows in `store.registry`).

A strategy is ``name@version``. Its code is stored, so any version can be loaded and
re-run exactly. Status moves candidate -> active -> archived (with a reason); a
candidate that fails its checks goes straight to archived. Every status is an entry of the
status history from a run date on (`strategies.status`: what a date saw, point in time);
registering writes the first one.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.store.registry import (
    register_version,
    set_first_registration,
    strategy_index,
    strategy_version,
    strategy_versions,
)
from blofin_pipeline.strategies.status import (
    ALWAYS,
    REGISTERING_STEP,
    STATUSES,
    set_status,
)

logger = logging.getLogger(__name__)

ORIGINS = ("builtin", "designer", "tuner", "user", "ml")
UNIQUE_NAME_ORIGINS = ("designer", "tuner")  # a name of theirs stands for one code: never an @2


@dataclass(frozen=True)
class StrategyRecord:
    name: str
    version: int
    category: str
    params: dict[str, Any]
    param_space: dict[str, Any]
    code: str
    code_hash: str
    status: str
    origin: str
    parent: str | None
    rationale: str | None
    created_run_date: str | None = None
    fitted_until: str | None = None  # tuned parameters: last bar their fitting saw (ISO)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def signal_function(self, limits: Any = None) -> Any:
        """Its signal function (`strategies.runner.signal_function`): the shipped class
        for a built-in, the kernel sandbox for everything else. Untrusted code is never
        loaded into this process."""
        from blofin_pipeline.strategies.runner import signal_function_for

        return signal_function_for(self, limits)


def record_from_row(row: dict[str, Any]) -> StrategyRecord:
    """A registry row (JSON text as stored) as a record."""
    return StrategyRecord(
        name=row["name"], version=int(row["version"]), category=row["category"],
        params=json.loads(row["params"]), param_space=json.loads(row["param_space"]), code=row["code"],
        code_hash=row["code_hash"], status=row["status"], origin=row["origin"], parent=row["parent"],
        rationale=row["rationale"], created_run_date=row.get("created_run_date"),
        fitted_until=row.get("fitted_until"),
    )


def get_strategy(store: Store, name: str, version: int | None = None) -> StrategyRecord:
    """One version (the latest when version is None); StrategyError if unknown."""
    if version is None:
        row = next(iter(strategy_versions(store, name)), None)
    else:
        row = strategy_version(store, name, version)
    if row is None:
        raise StrategyError(f"strategy {name!r}{'' if version is None else f' version {version}'} is not registered")
    return record_from_row(row)


def known_hashes_and_names(store: Store, run_date: str) -> tuple[set[str], set[str]]:
    """Code hashes and names registered before ``run_date`` started (built-ins and user
    files always): what the date's research must not propose again. What the date itself
    or a later date registered is left out, so a re-run or a backfill of the date proposes
    the same candidates as a run in date order (and `register` finds them)."""
    rows = [r for r in strategy_index(store)
            if r["origin"] in ("builtin", "user") or r["created_run_date"] is None or r["created_run_date"] < run_date]
    return {r["code_hash"] for r in rows}, {r["name"] for r in rows}


def register(
    store: Store,
    *,
    name: str,
    category: str,
    params: dict[str, Any],
    param_space: dict[str, Any],
    code: str,
    origin: str,
    run_date: str | None,
    status: str = "candidate",
    parent: str | None = None,
    rationale: str | None = None,
    fitted_until: str | None = None,
) -> StrategyRecord:
    """Register code as a version of `name`, with its status from `run_date` on.

    The same code under the same name is the same version: a retried or re-run step, or a
    backfill of an earlier date, gets the existing one back (an earlier date becomes its
    registration date) and writes its status entry for `run_date` again. Built-ins hold
    from every date, a user's file without a run date too (the next run checks it). A designer's or tuner's
    name stands for one code: other code under a taken name is a StrategyError, never `@2`.
    `fitted_until`: a parameter-only tune's last fitted bar (ISO timestamp), see
    `steps.scoring.fitted_overrides`.
    """
    from blofin_pipeline.strategies import code_hash

    if status not in STATUSES or origin not in ORIGINS:
        raise StrategyError(f"strategy {name!r}: bad status {status!r} or origin {origin!r}")
    digest = code_hash(code)
    if origin in UNIQUE_NAME_ORIGINS:
        taken = strategy_versions(store, name)
        if taken and all(r["code_hash"] != digest for r in taken):
            raise StrategyError(f"strategy {name!r}: the name is registered with other code; "
                                f"a {origin} candidate needs a name of its own")
    row, inserted = register_version(store, {
        "name": name, "category": category, "params": params,
        "param_space": {k: list(v) for k, v in param_space.items()}, "code": code, "code_hash": digest,
        "status": status, "origin": origin, "parent": parent, "rationale": rationale,
        "created_at": utc_now(), "created_run_date": run_date, "archived_at": None, "archive_reason": None,
        "fitted_until": fitted_until,
    })
    record = record_from_row(row)
    if inserted:
        logger.info("registered strategy %s (%s, %s, %s)", record.ref, category, origin, status)
    elif run_date and origin != "builtin" and record.created_run_date and run_date < record.created_run_date:
        set_first_registration(store, name, record.version, run_date, rationale, fitted_until)
        record = get_strategy(store, name, record.version)
    # built-ins hold on every date; a file registered outside any run (add-strategy) is for
    # the next run, whatever date that run is for
    from_date = ALWAYS if origin == "builtin" else (run_date or ALWAYS)
    set_status(store, name, record.version, status, run_date=from_date, step=REGISTERING_STEP[origin])
    return record


def sync_builtins(store: Store) -> list[str]:
    """Register the built-in library (active on every date, registered by no run date). A
    built-in whose code changed gets a new version and its other versions are archived as
    superseded, on every date too. Returns the new refs."""
    from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources

    classes = builtin_strategies()
    added = []
    for name, code in builtin_strategy_sources().items():
        cls = classes[name]
        before = strategy_versions(store, name)
        record = register(store, name=name, category=cls.category, params=dict(cls.params),
                          param_space=dict(cls.param_space), code=code, origin="builtin", run_date=None,
                          status="active", rationale=cls.description or None)
        if all(r["version"] != record.version for r in before):
            added.append(record.ref)
        for r in before:
            if r["version"] != record.version and r["status"] != "archived":
                set_status(store, name, r["version"], "archived", f"superseded by built-in version {record.version}",
                           run_date=ALWAYS, step="builtin")
    return added
