"""The daily report: built from the data database, written as JSON, a database row and HTML."""
from __future__ import annotations

from blofin_pipeline.reporting.report import build_report
from blofin_pipeline.reporting.writer import merge_ai_review, write_report

__all__ = ["build_report", "merge_ai_review", "write_report"]
