"""The report written three ways: ``<reports_dir>/YYYY-MM-DD.json`` and ``.html``, and the
``daily_reports`` row (keyed by run date), plus ``index.html`` of every day.

A date's report is written whole each time the date runs: an AI review of an earlier run
is dropped with the rest (the run's own ai_review step adds the new one with
:func:`merge_ai_review`). The pages of the neighbouring days are rendered again so that
their previous/next links always point at the days that exist.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blofin_pipeline.exceptions import PipelineError, StoreError
from blofin_pipeline.reporting.day import llm_usage
from blofin_pipeline.reporting.index import (
    INDEX_HTML,
    INDEX_JSON,
    index_entry,
    load_entries,
    neighbours,
    render_index,
)
from blofin_pipeline.reporting.report import refresh_llm_usage
from blofin_pipeline.store import to_json, utc_now
from blofin_pipeline.store.reports import report_row, store_ai_review, upsert_report

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

logger = logging.getLogger(__name__)


def report_paths(run_date: str, reports_dir: Path | str) -> tuple[Path, Path]:
    """Where the run date's JSON and HTML reports go."""
    base = Path(reports_dir)
    return base / f"{run_date}.json", base / f"{run_date}.html"


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_files(run_date: str, report: Mapping[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    """The day's JSON and HTML, the index, and the neighbours' pages (their links)."""
    from blofin_pipeline.reporting.html import render_report

    base = Path(reports_dir)
    json_path, html_path = report_paths(run_date, base)
    _write_text(json_path, json.dumps(json.loads(to_json(report)), indent=2, sort_keys=False) + "\n")
    if report.get("signals") is not None:  # the day's signals, also on their own: YYYY-MM-DD.signals.json
        _write_text(json_path.with_suffix(".signals.json"),
                    json.dumps(json.loads(to_json(report["signals"])), indent=2) + "\n")
    entries = load_entries(base)
    entries[run_date] = index_entry(report)
    _write_text(base / INDEX_JSON, json.dumps([entries[d] for d in sorted(entries)], indent=1) + "\n")
    _write_text(base / INDEX_HTML, render_index(entries))
    dates = sorted(entries)
    previous, following = neighbours(dates, run_date)
    _write_text(html_path, render_report(report, previous=previous, following=following))
    for other in (d for d in (previous, following) if d):
        other_json, other_html = report_paths(other, base)
        try:
            other_report = json.loads(other_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # listed but unreadable: its page keeps its old links
        before, after = neighbours(dates, other)
        _write_text(other_html, render_report(other_report, previous=before, following=after))
    return json_path, html_path


def write_report(store: Store, run_date: str, report: dict[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    """Write the JSON and HTML files and the ``daily_reports`` row, replacing any earlier
    report of the date whole (its AI review included); returns (json_path, html_path)."""
    report = {**report, "ai_review": None}
    json_path, html_path = _write_files(run_date, report, reports_dir)
    now = utc_now()
    upsert_report(store, {
        "run_date": run_date, "report": to_json(report), "summary": report.get("summary", {}).get("text"),
        "ai_review": None, "ai_review_mode": None, "json_path": str(json_path), "html_path": str(html_path),
        "synthetic_data": int(bool(report.get("synthetic"))), "created_at": now, "updated_at": now,
    })
    logger.info("report for %s written to %s and %s", run_date, json_path, html_path)
    return json_path, html_path


def merge_ai_review(store: Store, run_date: str, review: Mapping[str, Any], reports_dir: Path | str
                    ) -> tuple[Path, Path]:
    """Store the day's AI review in ``daily_reports`` and rewrite the JSON and HTML with it.

    The review's own LLM calls came after `generate_report`: the day's LLM usage and cost are
    read again, so the report's cost is the whole day's."""
    row = report_row(store, run_date)
    if row is None:
        raise PipelineError(f"no daily report for {run_date} to merge the AI review into: run generate_report first")
    try:
        report = json.loads(row["report"])
    except ValueError as err:
        raise StoreError(f"daily_reports row for {run_date} holds invalid JSON") from err
    report = refresh_llm_usage(report, llm_usage(store, run_date))
    review = json.loads(to_json(dict(review)))
    report["ai_review"] = review
    json_path, html_path = _write_files(run_date, report, reports_dir)
    store_ai_review(store, run_date, report=to_json(report), review=to_json(review), mode=review.get("mode"),
                    summary=report["summary"].get("text"), json_path=str(json_path), html_path=str(html_path))
    logger.info("AI review (%s) merged into the report for %s", review.get("mode"), run_date)
    return json_path, html_path
