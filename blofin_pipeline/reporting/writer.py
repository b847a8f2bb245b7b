"""The report written three ways: ``<reports_dir>/YYYY-MM-DD.json`` and ``.html``, and the
``daily_reports`` row (keyed by run date, so a retry rewrites the same row and never
touches an AI review already merged). :func:`merge_ai_review` adds the ``ai_review``
step's result to the stored report and rewrites both files."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blofin_pipeline.exceptions import PipelineError, StoreError
from blofin_pipeline.reporting.report import llm_usage, loads_or, summary_text
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
    from blofin_pipeline.reporting.html import render_report

    json_path, html_path = report_paths(run_date, reports_dir)
    _write_text(json_path, json.dumps(json.loads(to_json(report)), indent=2, sort_keys=False) + "\n")
    _write_text(html_path, render_report(report))
    if report.get("signals") is not None:  # the day's signals, also on their own: YYYY-MM-DD.signals.json
        _write_text(json_path.with_suffix(".signals.json"),
                    json.dumps(json.loads(to_json(report["signals"])), indent=2) + "\n")
    return json_path, html_path


def write_report(store: Store, run_date: str, report: dict[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
    """Write the JSON and HTML files and upsert ``daily_reports``; returns (json_path, html_path).

    An AI review already merged for the date stays in the row and is carried into the new
    files, so re-running generate_report after ai_review loses nothing.
    """
    existing = report_row(store, run_date)
    if existing and existing["ai_review"] and not report.get("ai_review"):
        report = {**report, "ai_review": loads_or(existing["ai_review"], default=None)}
    json_path, html_path = _write_files(run_date, report, reports_dir)
    now = utc_now()
    upsert_report(store, {
        "run_date": run_date, "report": to_json(report), "summary": report.get("summary", {}).get("text"),
        "json_path": str(json_path), "html_path": str(html_path), "synthetic_data": int(bool(report.get("synthetic"))),
        "created_at": now, "updated_at": now,
    })
    logger.info("report for %s written to %s and %s", run_date, json_path, html_path)
    return json_path, html_path


def merge_ai_review(store: Store, run_date: str, review: Mapping[str, Any], reports_dir: Path | str) -> tuple[Path, Path]:
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
    review = json.loads(to_json(dict(review)))
    report["ai_review"] = review
    report["llm_usage"] = json.loads(to_json(llm_usage(store, run_date)))
    summary = report.setdefault("summary", {})
    summary["llm_usd"] = report["llm_usage"]["usd"]
    if {"strategies_scored", "best_strategy"} <= set(summary):
        summary["text"] = summary_text(run_date, bool(report.get("synthetic")), summary)
    json_path, html_path = _write_files(run_date, report, reports_dir)
    store_ai_review(store, run_date, report=to_json(report), summary=summary.get("text"), review=to_json(review),
                    mode=review.get("mode"), json_path=str(json_path), html_path=str(html_path))
    logger.info("AI review (%s) merged into the report for %s", review.get("mode"), run_date)
    return json_path, html_path
