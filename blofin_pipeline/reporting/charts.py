"""Inline SVG line charts for the HTML report: no JavaScript, no external assets.

Every label is escaped; values that are missing or not finite break the line instead
of being drawn as zero.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from blofin_pipeline.numeric import is_finite

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 820, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 250, 16, 40
Y_TICKS = 5
X_TICKS = 5
LEGEND_CHARS = 34         # longer legend labels are cut to fit the right margin


@dataclass(frozen=True)
class Series:
    """One line: its label and its points (x as a number, y as a number or None)."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]


def parse_time(text: str) -> float | None:
    """ISO-8601 text -> epoch seconds (naive times are UTC); None when unparseable."""
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


def _nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _time_formatter(lo: float, hi: float) -> Callable[[float], str]:
    fmt = "%m-%d %H:%M" if hi - lo < 3 * 86400 else "%Y-%m-%d"
    return lambda x: datetime.fromtimestamp(x, tz=timezone.utc).strftime(fmt)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_format: Callable[[float], str] = lambda v: f"{v:.3g}",
    x_kind: str = "time",
    x_labels: Sequence[str] | None = None,
) -> str:
    """An SVG line chart; ``x_kind`` is "time" (epoch seconds) or "index" (labels from ``x_labels``)."""
    points = [(x, y) for s in series for x, y in zip(s.xs, s.ys) if is_finite(x) and is_finite(y)]
    if not points:
        return f'<p class="empty">{html.escape(title)}: no data to chart.</p>'
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (y_hi - y_lo) * 0.05 or (abs(y_hi) * 0.05 or 1.0)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return MARGIN_TOP + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    out = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="{html.escape(title)}">',
           f"<title>{html.escape(title)}</title>",
           f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>']
    for t in _nice_ticks(y_lo, y_hi, Y_TICKS):
        y = sy(t)
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                   f"{html.escape(y_format(t))}</text>")
    if y_lo < 0 < y_hi:
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" '
                   'stroke="#999" stroke-dasharray="3 3"/>')
    x_ticks, labels = _x_ticks(x_lo, x_hi, x_kind, x_labels)
    for x, label in zip(x_ticks, labels):
        out.append(f'<text x="{sx(x):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="middle" class="tick">'
                   f"{html.escape(label)}</text>")
    for i, s in enumerate(series):
        out += _series_svg(s, PALETTE[i % len(PALETTE)], i, sx, sy)
    out.append("</svg>")
    return "\n".join(out)


def _x_ticks(x_lo: float, x_hi: float, x_kind: str, x_labels: Sequence[str] | None
             ) -> tuple[list[float], list[str]]:
    """Tick positions and labels of the x axis: evenly spaced times, or every k-th index."""
    if x_kind == "time":
        fmt = _time_formatter(x_lo, x_hi)
        x_ticks = [x_lo + (x_hi - x_lo) * i / (X_TICKS - 1) for i in range(X_TICKS)]
        return x_ticks, [fmt(x) for x in x_ticks]
    n = int(round(x_hi)) + 1
    stride = max(1, math.ceil(n / 7))
    x_ticks = [float(i) for i in range(0, n, stride)]
    return x_ticks, [str(x_labels[i]) if x_labels and i < len(x_labels) else str(i) for i in range(0, n, stride)]


def _series_svg(s: Series, color: str, i: int, sx: Callable[[float], float], sy: Callable[[float], float]
                ) -> list[str]:
    """One series: polylines over its finite runs (a lone point is a dot) and its legend entry."""
    out: list[str] = []
    segment: list[str] = []
    segments = []
    for x, y in zip(s.xs, s.ys):
        if is_finite(x) and is_finite(y):
            segment.append(f"{sx(x):.1f},{sy(y):.1f}")
        elif segment:
            segments.append(segment)
            segment = []
    if segment:
        segments.append(segment)
    for seg in segments:
        if len(seg) == 1:
            cx, cy = seg[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
        else:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(seg)}"/>')
    ly = MARGIN_TOP + 14 + i * 18
    lx = WIDTH - MARGIN_RIGHT + 12
    out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="4" fill="{color}"/>')
    label = s.label if len(s.label) <= LEGEND_CHARS else s.label[:LEGEND_CHARS - 1] + "\u2026"
    out.append(f'<text x="{lx + 18}" y="{ly - 3}" class="legend">{html.escape(label)}</text>')
    return out
