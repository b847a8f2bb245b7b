"""The daily reports (table ``daily_reports``), one row per run date."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from blofin_pipeline.store.connection import utc_now

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

REPORT_UPDATE = ("report", "summary", "ai_review", "ai_review_mode", "json_path", "html_path", "synthetic_data",
                 "updated_at")


def report_row(store: Store, run_date: str) -> dict[str, Any] | None:
    """The stored report of the run date (report, ai_review, ai_review_mode), or None."""
    rows = store.query_named("reports_row", {"run_date": run_date})
    return rows[0] if rows else None


def upsert_report(store: Store, row: Mapping[str, Any]) -> None:
    """Write the report row; a rewrite replaces it whole (an AI review included), keeping created_at."""
    store.upsert("daily_reports", [row], key=("run_date",), update=REPORT_UPDATE)


def store_ai_review(store: Store, run_date: str, *, report: str, summary: str | None, review: str,
                    mode: str | None, json_path: str, html_path: str) -> None:
    """Merge the AI review (JSON text) and the report carrying it (and its summary line) into the
    run date's row."""
    store.execute_named("reports_set_review", {"run_date": run_date, "report": report, "summary": summary,
                                               "review": review, "mode": mode, "json_path": json_path,
                                               "html_path": html_path, "now": utc_now()})

