"""The strategy registry: every version with its code and hash (rows in `store.registry`).

A strategy is ``name@version``. Its code is stored, so any version can be loaded and
re-run exactly. Status moves candidate -> active -> archived (with a reason); a
candidate that fails its checks goes straight to archived.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.store.registry import (
    portfolio_rows_at_start,
    register_version,
    strategy_index,
    strategy_rows_with_status,
    strategy_version,
    strategy_versions,
    update_strategy_status,
)

logger = logging.getLogger(__name__)

STATUSES = ("candidate", "active", "archived")
ORIGINS = ("builtin", "designer", "tuner", "user", "ml")


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

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def signal_function(self, limits: Any = None) -> Any:
        """Its signal function (`strategies.runner.signal_function`): the shipped class
        for a built-in, the kernel sandbox for everything else. Untrusted code is never
        loaded into this process."""
        from blofin_pipeline.strategies.runner import signal_function_for

        return signal_function_for(self, limits)


def _record(row: dict[str, Any]) -> StrategyRecord:
    return StrategyRecord(
        name=row["name"], version=int(row["version"]), category=row["category"],
        params=json.loads(row["params"]), param_space=json.loads(row["param_space"]), code=row["code"],
        code_hash=row["code_hash"], status=row["status"], origin=row["origin"], parent=row["parent"],
        rationale=row["rationale"],
    )


def strategies_with_status(store: Store, *statuses: str) -> list[StrategyRecord]:
    """Every version with one of the statuses, by name then version."""
    rows = [r for status in statuses for r in strategy_rows_with_status(store, status)]
    if len(statuses) > 1:
        rows.sort(key=lambda r: (r["name"], int(r["version"])))
    return [_record(r) for r in rows]


def portfolio_at_start(store: Store, run_date: str) -> list[StrategyRecord]:
    """The versions active when `run_date` started (see the query): what a day scores,
    so that a retry or a backfill of that day scores the same set."""
    return [_record(r) for r in portfolio_rows_at_start(store, run_date)]


def get_strategy(store: Store, name: str, version: int | None = None) -> StrategyRecord:
    """One version (the latest when version is None); StrategyError if unknown."""
    if version is None:
        row = next(iter(strategy_versions(store, name)), None)
    else:
        row = strategy_version(store, name, version)
    if row is None:
        raise StrategyError(f"strategy {name!r}{'' if version is None else f' version {version}'} is not registered")
    return _record(row)


def known_hashes_and_names(store: Store, *, except_run_date: str | None = None) -> tuple[set[str], set[str]]:
    """Code hashes and names already registered; those a research step registered on
    ``except_run_date`` are left out, so a retry of that date proposes them again
    (and `register` finds them) instead of inventing new ones."""
    rows = [r for r in strategy_index(store)
            if not (r["created_run_date"] == except_run_date and r["origin"] in ("designer", "tuner"))]
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
) -> StrategyRecord:
    """Register code as a new version of `name`, unless that exact code is already there.

    Idempotent for a retried task: the same code under the same name returns the
    existing version instead of adding one.
    """
    from blofin_pipeline.strategies import code_hash

    if status not in STATUSES or origin not in ORIGINS:
        raise StrategyError(f"strategy {name!r}: bad status {status!r} or origin {origin!r}")
    digest = code_hash(code)
    row, inserted = register_version(store, {
        "name": name, "category": category, "params": params,
        "param_space": {k: list(v) for k, v in param_space.items()}, "code": code, "code_hash": digest,
        "status": status, "origin": origin, "parent": parent, "rationale": rationale,
        "created_at": utc_now(), "created_run_date": run_date, "archived_at": None, "archive_reason": None,
    })
    record = _record(row)
    if inserted:
        logger.info("registered strategy %s (%s, %s, %s)", record.ref, category, origin, status)
    return record


def set_status(store: Store, name: str, version: int, status: str, reason: str | None = None) -> None:
    """Move one version to a status. Archiving records why and when it was first archived;
    any other status clears both (the reason is then ignored)."""
    if status not in STATUSES:
        raise StrategyError(f"unknown strategy status {status!r}")
    update_strategy_status(store, name, version, status, reason if status == "archived" else None)


def sync_builtins(store: Store, run_date: str) -> list[str]:
    """Register the built-in library. A built-in whose code changed gets a new active
    version and its older versions are archived as superseded. Returns new refs."""
    from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources

    classes = builtin_strategies()
    added = []
    for name, code in builtin_strategy_sources().items():
        cls = classes[name]
        before = strategy_versions(store, name)
        record = register(store, name=name, category=cls.category, params=dict(cls.params),
                          param_space=dict(cls.param_space), code=code, origin="builtin", run_date=run_date,
                          status="active", rationale=cls.description or None)
        if all(r["version"] != record.version for r in before):
            added.append(record.ref)
            for r in before:
                if r["status"] != "archived":
                    set_status(store, name, r["version"], "archived", f"superseded by built-in version {record.version}")
    return added
