"""Inline SVG line charts for the HTML report: no JavaScript, no external assets.

A chart is as wide as its page (the SVG scales to its container), both axes carry a
label and ticks, and the legend sits under the plot in as many columns as fit, every
label whole: nothing is cut. Every label is escaped; values that are missing or not
finite break the line instead of being drawn as zero.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from blofin_pipeline.numeric import is_finite

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BENCHMARK_COLOR = "#222"
WIDTH = 1200                       # viewBox width; the page scales it to its own width
PLOT_HEIGHT = 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP = 84, 24, 40   # the title sits in the top margin
AXIS_BAND = 46                     # under the plot: tick labels and the x-axis label
LEGEND_ROW, LEGEND_CHAR_PX, LEGEND_SWATCH = 20, 7.2, 34
Y_TICKS = 5
X_TICKS = 6
MARKED_POINTS = 40                 # a series with no more points than this gets a dot on each


@dataclass(frozen=True)
class Series:
    """One line: its label and its points (x as a number, y as a number or None). A
    ``dashed`` line is a reference (a benchmark), drawn dark and dashed."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    dashed: bool = False


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
    ticks, t = [], math.ceil(lo / step) * step
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _time_formatter(lo: float, hi: float) -> Callable[[float], str]:
    fmt = "%m-%d %H:%M" if hi - lo < 3 * 86400 else "%Y-%m-%d"
    return lambda x: datetime.fromtimestamp(x, tz=timezone.utc).strftime(fmt)


@dataclass(frozen=True)
class _Frame:
    """The plot area and the data range it shows."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float

    @property
    def plot_w(self) -> float:
        return WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def sx(self, x: float) -> float:
        return MARGIN_LEFT + (x - self.x_lo) / (self.x_hi - self.x_lo) * self.plot_w

    def sy(self, y: float) -> float:
        return MARGIN_TOP + (1 - (y - self.y_lo) / (self.y_hi - self.y_lo)) * PLOT_HEIGHT


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    x_label: str = "",
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
    frame = _Frame(x_lo, x_hi, y_lo - pad, y_hi + pad)
    legend, legend_h = _legend(series)
    height = MARGIN_TOP + PLOT_HEIGHT + AXIS_BAND + legend_h
    out = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="{html.escape(title)}">',
           f"<title>{html.escape(title)}</title>",
           f'<text x="{MARGIN_LEFT}" y="24" class="chart-title">{html.escape(title)}</text>',
           f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{frame.plot_w}" height="{PLOT_HEIGHT}" '
           'fill="#fff" stroke="#bbb"/>']
    out += _y_axis(frame, y_format, y_label)
    out += _x_axis(frame, x_kind, x_labels, x_label)
    for i, s in enumerate(series):
        out += _series_svg(s, _color(s, i), frame)
    out += legend
    out.append("</svg>")
    return "\n".join(out)


def _color(s: Series, i: int) -> str:
    return BENCHMARK_COLOR if s.dashed else PALETTE[i % len(PALETTE)]


def _y_axis(frame: _Frame, y_format: Callable[[float], str], y_label: str) -> list[str]:
    out = []
    for t in _nice_ticks(frame.y_lo, frame.y_hi, Y_TICKS):
        y = frame.sy(t)
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + frame.plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{MARGIN_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                   f"{html.escape(y_format(t))}</text>")
    if frame.y_lo < 0 < frame.y_hi:
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + frame.plot_w}" y1="{frame.sy(0):.1f}" '
                   f'y2="{frame.sy(0):.1f}" stroke="#999" stroke-dasharray="3 3"/>')
    if y_label:
        cy = MARGIN_TOP + PLOT_HEIGHT / 2
        out.append(f'<text x="16" y="{cy:.1f}" transform="rotate(-90 16 {cy:.1f})" text-anchor="middle" '
                   f'class="axis-label">{html.escape(y_label)}</text>')
    return out


def _x_axis(frame: _Frame, x_kind: str, x_labels: Sequence[str] | None, x_label: str) -> list[str]:
    base = MARGIN_TOP + PLOT_HEIGHT
    out = []
    right = MARGIN_LEFT + frame.plot_w
    for x, label in zip(*_x_ticks(frame.x_lo, frame.x_hi, x_kind, x_labels)):
        # a label at the right edge ends there instead of running off the chart
        anchor = "end" if frame.sx(x) > right - 40 else "middle"
        out.append(f'<line x1="{frame.sx(x):.1f}" x2="{frame.sx(x):.1f}" y1="{base}" y2="{base + 5}" stroke="#999"/>')
        out.append(f'<text x="{frame.sx(x):.1f}" y="{base + 19}" text-anchor="{anchor}" class="tick">'
                   f"{html.escape(label)}</text>")
    if x_label:
        out.append(f'<text x="{MARGIN_LEFT + frame.plot_w / 2:.1f}" y="{base + 39}" text-anchor="middle" '
                   f'class="axis-label">{html.escape(x_label)}</text>')
    return out


def _x_ticks(x_lo: float, x_hi: float, x_kind: str, x_labels: Sequence[str] | None
             ) -> tuple[list[float], list[str]]:
    """Tick positions and labels of the x axis: evenly spaced times, or every k-th index."""
    if x_kind == "time":
        fmt = _time_formatter(x_lo, x_hi)
        x_ticks = [x_lo + (x_hi - x_lo) * i / (X_TICKS - 1) for i in range(X_TICKS)]
        return x_ticks, [fmt(x) for x in x_ticks]
    n = int(round(x_hi)) + 1
    stride = max(1, math.ceil(n / 8))
    x_ticks = [float(i) for i in range(0, n, stride)]
    return x_ticks, [str(x_labels[i]) if x_labels and i < len(x_labels) else str(i) for i in range(0, n, stride)]


def _legend(series: Sequence[Series]) -> tuple[list[str], int]:
    """The legend under the plot, in columns as wide as the longest label: (svg, height)."""
    if not series:
        return [], 0
    col_w = LEGEND_SWATCH + LEGEND_CHAR_PX * max(len(s.label) for s in series) + 24
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    cols = max(1, int(plot_w // col_w))
    top = MARGIN_TOP + PLOT_HEIGHT + AXIS_BAND
    out = []
    for i, s in enumerate(series):
        x = MARGIN_LEFT + (i % cols) * (plot_w / cols)
        y = top + (i // cols) * LEGEND_ROW + 12
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<line x1="{x:.1f}" x2="{x + 26:.1f}" y1="{y - 4}" y2="{y - 4}" stroke="{_color(s, i)}" '
                   f'stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + LEGEND_SWATCH:.1f}" y="{y}" class="legend">{html.escape(s.label)}</text>')
    rows = math.ceil(len(series) / cols)
    return out, rows * LEGEND_ROW + 8


def _series_svg(s: Series, color: str, frame: _Frame) -> list[str]:
    """One series: polylines over its finite runs (a lone point is a dot)."""
    out: list[str] = []
    segments: list[list[str]] = [[]]
    for x, y in zip(s.xs, s.ys):
        if is_finite(x) and is_finite(y):
            segments[-1].append(f"{frame.sx(x):.1f},{frame.sy(y):.1f}")
        elif segments[-1]:
            segments.append([])
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    marked = sum(len(seg) for seg in segments) <= MARKED_POINTS
    for seg in (seg for seg in segments if seg):
        if len(seg) > 1:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{" ".join(seg)}"/>')
        if len(seg) == 1 or marked:  # a lone point, or few enough to show each
            out += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" fill="{color}"/>' for p in seg]
    return out
