"""``reports/index.html``: every day with a report, newest first, and the trend of the top
score over them. Its data is ``reports/index.json`` (one small entry per day, rewritten
with each report), so the index never reads the days' full reports."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from blofin_pipeline.reporting.charts import Series, line_chart
from blofin_pipeline.reporting.html import STYLE, esc, num, text

INDEX_JSON = "index.json"
INDEX_HTML = "index.html"


def index_entry(report: Mapping[str, Any]) -> dict[str, Any]:
    """The day's line in the index, from its report."""
    s = report.get("summary") or {}
    review = report.get("ai_review") if isinstance(report.get("ai_review"), Mapping) else {}
    return {"date": report.get("run_date"), "best_strategy": s.get("best_strategy"), "best_score": s.get("best_score"),
            "mean_score": s.get("mean_score"), "scored": s.get("strategies_scored"), "kept": s.get("strategies_kept"),
            "archived": s.get("strategies_archived"), "designed": s.get("designed"), "tuned": s.get("tuned"),
            "significant": len(s.get("significant") or []), "synthetic": bool(report.get("synthetic")),
            "review": review.get("mode"), "run_id": (report.get("run") or {}).get("run_id"),
            "generated_at": report.get("generated_at")}


def stale_days(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Days whose report was made before an earlier day's (a backfill after them): each
    day reads the days before it, so it is out of date until it runs again. {day: [the
    earlier days made after it]}."""
    out: dict[str, list[str]] = {}
    for day, e in entries.items():
        later_made = sorted(d for d, o in entries.items() if d < day and e.get("generated_at")
                            and o.get("generated_at") and o["generated_at"] > e["generated_at"])
        if later_made:
            out[day] = later_made
    return out


def load_entries(reports_dir: Path) -> dict[str, dict[str, Any]]:
    """The index's entries by date; rebuilt from the days' JSON reports when it is missing."""
    path = reports_dir / INDEX_JSON
    if path.exists():
        try:
            return {e["date"]: e for e in json.loads(path.read_text(encoding="utf-8"))}
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: rebuilt below from the reports themselves
    entries = {}
    for report_path in sorted(reports_dir.glob("????-??-??.json")):
        try:
            entries[report_path.stem] = index_entry(json.loads(report_path.read_text(encoding="utf-8")))
        except ValueError:
            continue
    return entries


def neighbours(dates: Sequence[str], run_date: str) -> tuple[str | None, str | None]:
    """The days before and after ``run_date`` that have a report."""
    earlier = [d for d in dates if d < run_date]
    later = [d for d in dates if d > run_date]
    return (max(earlier) if earlier else None), (min(later) if later else None)


def render_index(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The index page: the top-score trend over every day and one row per day, linked."""
    days = sorted(entries)
    xs = list(range(len(days)))
    chart = line_chart([Series("top score", xs, [entries[d].get("best_score") for d in days]),
                        Series("mean score", xs, [entries[d].get("mean_score") for d in days])],
                       title="Top and mean strategy score per day", x_kind="index", x_labels=days,
                       y_label="score", x_label="run date")
    head = "".join(f"<th>{esc(h)}</th>" for h in ("day", "data", "best strategy", "top score", "mean score", "scored",
                                                   "kept", "archived", "designed", "tuned", "significant", "review",
                                                   "note"))
    stale = stale_days(entries)
    rows = []
    for d in reversed(days):
        e = entries[d]
        note = (f"made before {', '.join(stale[d])} ran: run {d} again to include them" if d in stale else "")
        cells = [f'<a href="{esc(d)}.html">{esc(d)}</a>', "SYNTHETIC" if e.get("synthetic") else "BloFin",
                 esc(text(e.get("best_strategy"))), esc(num(".3f")(e.get("best_score"))),
                 esc(num(".3f")(e.get("mean_score")))] + [
                    esc(text(e.get(k))) for k in ("scored", "kept", "archived", "designed", "tuned", "significant",
                                                  "review")] + [f'<span class="bad">{esc(note)}</span>']
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = (f'<div class="scroll"><table id="days"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
             "</table></div>") if rows else '<p class="empty">no report yet</p>'
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>BloFin research reports</title><style>{STYLE}</style></head><body>",
        f"<header><h1>BloFin research reports</h1><p>{len(days)} day(s)</p></header><main>",
        f'<section id="trend"><h2>Top score per day</h2>{chart}</section>',
        f'<section id="all-days"><h2>Every day</h2>{table}</section>', "</main></body></html>",
    ]) + "\n"
