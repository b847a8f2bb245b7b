"""The knowledge base / change log (table ``knowledge_base``): designs, rejections,
tunings, acceptances and archivals, one entry per run date, kind and subject."""
from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.store.connection import utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store


def add_knowledge(store: Store, run_date: str, kind: str, subject: str, detail: Mapping[str, Any]) -> None:
    """Write one entry (detail as JSON). A retry rewrites the detail and keeps the time of
    the first write."""
    store.upsert("knowledge_base", [{"run_date": run_date, "kind": kind, "subject": subject, "detail": dict(detail),
                                     "created_at": utc_now()}],
                 key=("run_date", "kind", "subject"), update=("detail",))


def withdraw_knowledge(store: Store, run_date: str, kind: str, subject: str) -> None:
    """Delete one entry, if present."""
    store.execute_named("knowledge_delete", {"run_date": run_date, "kind": kind, "subject": subject})


def withdraw_knowledge_of_kind(store: Store, run_date: str, kind: str) -> None:
    """Delete every entry of one kind on the run date."""
    store.execute_named("knowledge_delete_kind", {"run_date": run_date, "kind": kind})


def withdraw_notes_of_step(store: Store, run_date: str, kind: str, step: str,
                          subjects: Collection[str] | None = None) -> None:
    """Delete the run date's entries of ``kind`` whose detail names ``step`` as their writer
    (of ``subjects`` only, when given)."""
    for row in knowledge_on(store, run_date):
        if row["kind"] != kind or (subjects is not None and row["subject"] not in subjects):
            continue
        detail = json.loads(row["detail"]) if row["detail"] else {}
        if isinstance(detail, dict) and detail.get("step") == step:
            withdraw_knowledge(store, run_date, kind, row["subject"])


def knowledge_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's entries (kind, subject, detail as JSON text), by kind then subject."""
    return store.query_named("knowledge_on_date", {"run_date": run_date})


def rejections_since(store: Store, since: str, run_date: str) -> list[dict[str, Any]]:
    """Candidates the checks rejected from ``since`` up to the day before ``run_date``
    (run_date, subject, detail as JSON text), newest first."""
    return store.query_named("knowledge_rejected_since", {"since": since, "run_date": run_date})


def changes_since(store: Store, since: str, run_date: str) -> list[dict[str, Any]]:
    """Rejected candidates and tunes from ``since`` up to the day before ``run_date`` (run_date,
    kind, subject, detail as JSON text), newest first."""
    return store.query_named("knowledge_changes_since", {"since": since, "run_date": run_date})
