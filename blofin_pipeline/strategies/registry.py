"""The strategy registry in the data database: every version with its code and hash.

A strategy is ``name@version``. Its code is stored, so any version can be loaded and
re-run exactly. Status moves candidate -> active -> archived (with a reason); a
candidate that fails its checks goes straight to archived.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store import Store, utc_now

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

    def load(self) -> type:
        """The strategy class. Only for code that passed the checks (built-ins, or active)."""
        from blofin_pipeline.strategies import load_strategy_source

        return load_strategy_source(self.code, origin=self.ref)


def _record(row: dict[str, Any]) -> StrategyRecord:
    return StrategyRecord(
        name=row["name"], version=int(row["version"]), category=row["category"],
        params=json.loads(row["params"]), param_space=json.loads(row["param_space"]), code=row["code"],
        code_hash=row["code_hash"], status=row["status"], origin=row["origin"], parent=row["parent"],
        rationale=row["rationale"],
    )


def strategies_with_status(store: Store, *statuses: str) -> list[StrategyRecord]:
    """Every version with one of the statuses, by name then version."""
    params: dict[str, Any] = {f"s{i}": s for i, s in enumerate(statuses)}
    sql = "SELECT * FROM strategies WHERE status IN (" + ", ".join(f":s{i}" for i in range(len(statuses))) + ")"
    return [_record(r) for r in store.query(sql + " ORDER BY name, version", params)]


def portfolio_at_start(store: Store, run_date: str) -> list[StrategyRecord]:
    """The versions active when `run_date` started (see the query): what a day scores,
    so that a retry or a backfill of that day scores the same set."""
    return [_record(r) for r in store.query_named("registry_portfolio_at_start", {"run_date": run_date})]


def get_strategy(store: Store, name: str, version: int | None = None) -> StrategyRecord:
    """One version (the latest when version is None); StrategyError if unknown."""
    if version is None:
        rows = store.query("SELECT * FROM strategies WHERE name = :n ORDER BY version DESC", {"n": name})
    else:
        rows = store.query("SELECT * FROM strategies WHERE name = :n AND version = :v", {"n": name, "v": version})
    if not rows:
        raise StrategyError(f"strategy {name!r}{'' if version is None else f' version {version}'} is not registered")
    return _record(rows[0])


def known_hashes_and_names(store: Store, *, except_run_date: str | None = None) -> tuple[set[str], set[str]]:
    """Code hashes and names already registered; those a research step registered on
    ``except_run_date`` are left out, so a retry of that date proposes them again
    (and `register` finds them) instead of inventing new ones."""
    rows = store.query("SELECT name, code_hash, origin, created_run_date FROM strategies")
    rows = [r for r in rows if not (r["created_run_date"] == except_run_date and r["origin"] in ("designer", "tuner"))]
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
    existing = store.query("SELECT * FROM strategies WHERE name = :n AND code_hash = :h", {"n": name, "h": digest})
    if existing:
        return _record(existing[0])
    with store.transaction():
        version = int(store.scalar("SELECT COALESCE(MAX(version), 0) AS v FROM strategies WHERE name = :n",
                                   {"n": name})) + 1
        row = {
            "name": name, "version": version, "category": category, "params": params,
            "param_space": {k: list(v) for k, v in param_space.items()}, "code": code, "code_hash": digest,
            "status": status, "origin": origin, "parent": parent, "rationale": rationale,
            "created_at": utc_now(), "created_run_date": run_date, "archived_at": None, "archive_reason": None,
        }
        # DO NOTHING on a clash: a concurrent writer took this version; fail loudly below.
        store.upsert("strategies", [row], key=("name", "version"), update=())
    stored = get_strategy(store, name, version)
    if stored.code_hash != digest:
        raise StrategyError(f"strategy {name!r}: version {version} was registered concurrently; retry")
    logger.info("registered strategy %s@%d (%s, %s, %s)", name, version, category, origin, status)
    return stored


def set_status(store: Store, name: str, version: int, status: str, reason: str | None = None) -> None:
    """Move one version to a status; archiving records when and why."""
    if status not in STATUSES:
        raise StrategyError(f"unknown strategy status {status!r}")
    archived = status == "archived"
    store.execute(
        "UPDATE strategies SET status = :s, archived_at = :at, archive_reason = :r WHERE name = :n AND version = :v",
        {"s": status, "at": utc_now() if archived else None, "r": reason if archived else None, "n": name, "v": version},
    )


def sync_builtins(store: Store, run_date: str) -> list[str]:
    """Register the built-in library. A built-in whose code changed gets a new active
    version and its older versions are archived as superseded. Returns new refs."""
    from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources

    classes = builtin_strategies()
    added = []
    for name, code in builtin_strategy_sources().items():
        cls = classes[name]
        before = store.query("SELECT version, code_hash, status FROM strategies WHERE name = :n", {"n": name})
        record = register(store, name=name, category=cls.category, params=dict(cls.params),
                          param_space=dict(cls.param_space), code=code, origin="builtin", run_date=run_date,
                          status="active", rationale=cls.description or None)
        if all(r["version"] != record.version for r in before):
            added.append(record.ref)
            for r in before:
                if r["status"] != "archived":
                    set_status(store, name, r["version"], "archived", f"superseded by built-in version {record.version}")
    return added


def add_knowledge(store: Store, run_date: str, kind: str, subject: str, detail: dict[str, Any]) -> None:
    """One entry of the knowledge base / change log (upsert per run date, kind and subject)."""
    store.upsert("knowledge_base", [{"run_date": run_date, "kind": kind, "subject": subject, "detail": detail,
                                     "created_at": utc_now()}], key=("run_date", "kind", "subject"))


def record_trials(store: Store, run_date: str, trials: Iterable[tuple[str, int]]) -> None:
    store.upsert("research_trials", [{"run_date": run_date, "item": item, "n_trials": int(n)} for item, n in trials],
                 key=("run_date", "item"))


def total_trials(store: Store, *, before: str | None = None) -> int:
    """Configurations ever tried (first tried before a run date, if given): each item
    counted once, at its largest trial count."""
    value = store.scalar("SELECT COALESCE(SUM(n), 0) AS total FROM (SELECT MAX(n_trials) AS n FROM research_trials "
                         "GROUP BY item HAVING MIN(run_date) < :before) t", {"before": before or "9999-12-31"})
    return int(value or 0)


def items_tried_before(store: Store, run_date: str) -> set[str]:
    rows = store.query("SELECT item FROM research_trials GROUP BY item HAVING MIN(run_date) < :d", {"d": run_date})
    return {r["item"] for r in rows}
