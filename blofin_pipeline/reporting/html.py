"""The daily report as one self-contained HTML page: inline CSS and SVG, no JavaScript,
no external assets, so it opens from ``file://`` with no server.

Strategy names, error messages and LLM text are untrusted: every piece of text goes
through :func:`html.escape` (via :func:`esc`) before it reaches the page. The sections
are `reporting.sections`; this module holds the page, its navigation and the helpers.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from blofin_pipeline.numeric import is_finite

MISSING = "\u2013"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1500px;margin:0 auto;padding:16px 24px 48px}
header{background:#14213d;color:#fff;padding:16px 24px;display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 24px}
header h1{margin:0;font-size:1.5em}
header p{margin:0;opacity:.85}
header .days a{color:#fff;margin-right:14px;font-size:.95em}
.banner{padding:14px 24px;font-weight:700;font-size:1.1em;text-align:center}
.banner.synthetic{background:#ffd400;color:#000;border-bottom:4px solid #c00}
.banner.real{background:#e6f4ea;color:#114;font-weight:400;font-size:.95em}
section{background:#fff;border:1px solid #dde;border-radius:6px;margin:18px 0;padding:8px 18px 16px}
h2{font-size:1.2em;border-bottom:1px solid #eee;padding-bottom:4px}
h3{font-size:1.02em;margin:14px 0 4px}
table{border-collapse:collapse;width:100%;font-size:.88em;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.scroll{overflow-x:auto}
th{background:#f0f2f6}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.archived td{color:#888}
td.edge-bad{color:#b00020}
td.edge-ok{color:#176b2c}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.kpi{background:#f0f2f6;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:1.3em}
.flags li{color:#8a3b00}
.ok{color:#176b2c}.bad{color:#b00020}
.empty{color:#777;font-style:italic}
.note{color:#555;font-size:.9em}
svg.chart{width:100%;height:auto;display:block;margin:6px 0 14px}
svg .tick{font-size:13px;fill:#444}
svg .axis-label{font-size:14px;fill:#222;font-weight:600}
svg .chart-title{font-size:15px;fill:#14213d;font-weight:700}
svg .legend{font-size:13px;fill:#222}
pre{white-space:pre-wrap;font-size:.85em;background:#f8f8f8;padding:8px}
nav.sections{padding:6px 0}
nav.sections a{margin-right:10px;font-size:.9em}
dl.params{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:.9em}
dl.params dt{font-weight:600}
"""


def esc(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape("" if value is None else str(value), quote=True)


def num(fmt: str) -> Callable[[Any], str]:
    return lambda v: format(v, fmt) if is_finite(v) else MISSING


def pct(v: Any) -> str:
    return f"{v:.1%}" if is_finite(v) else MISSING


def text(v: Any) -> str:
    if v is None:
        return MISSING
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


Column = tuple[str, str, Callable[[Any], str]]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str = "nothing to show",
          row_class: Callable[[Mapping[str, Any]], str] | None = None, row_title: str | None = None) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(title)}</th>" for _, title, _ in columns)
    body = []
    for r in rows:
        cls = row_class(r) if row_class else ""
        cells = []
        for key, _, fmt in columns:
            value = r.get(key)
            klass = f' class="num{_edge_class(key, value)}"' if is_finite(value) else ""
            cells.append(f"<td{klass}>{esc(fmt(value))}</td>")
        title = f' title="{esc(r.get(row_title))}"' if row_title and r.get(row_title) else ""
        body.append(f'<tr class="{esc(cls)}"{title}>' + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _edge_class(key: str, value: Any) -> str:
    """A ``vs_...`` column is an edge over a baseline: red at or below 0, green above."""
    if not key.startswith("vs_"):
        return ""
    return " edge-bad" if value <= 0 else " edge-ok"


def items(values: Sequence[Any], empty: str = "none") -> str:
    if not values:
        return f'<p class="empty">{esc(empty)}</p>'
    return "<ul>" + "".join(f"<li>{esc(text(i))}</li>" for i in values) + "</ul>"


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def day_links(run_date: str, previous: str | None, following: str | None) -> str:
    """Links to the previous and next day's report and to the index of every day."""
    prev = f'<a id="previous-day" href="{esc(previous)}.html">\u2190 {esc(previous)}</a>' if previous else ""
    nxt = f'<a id="next-day" href="{esc(following)}.html">{esc(following)} \u2192</a>' if following else ""
    return f'<p class="days">{prev}<a id="all-days" href="index.html">all days</a>{nxt}</p>'


def render_report(report: Mapping[str, Any], *, previous: str | None = None, following: str | None = None) -> str:
    """The whole page; ``previous`` / ``following``: the neighbouring days with a report."""
    from blofin_pipeline.reporting.sections import SECTIONS, render_sections

    run_date = report.get("run_date")
    synthetic = bool(report.get("synthetic"))
    banner = (f'<div class="banner {"synthetic" if synthetic else "real"}" id="data-notice">'
              f'{esc(report.get("data_notice"))}</div>')
    nav = '<nav class="sections">' + "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS) + "</nav>"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>BloFin research report {esc(run_date)}{' (SYNTHETIC DATA)' if synthetic else ''}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<header><h1>BloFin research report \u2014 {esc(run_date)}</h1>"
        f"<p>generated {esc(report.get('generated_at'))}</p>{day_links(str(run_date), previous, following)}</header>",
        banner,
        "<main>", nav, render_sections(report), "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"
