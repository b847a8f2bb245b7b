"""The inline SVG chart: scaling, gaps, escaping, empty input."""
from __future__ import annotations

import math
import re

from blofin_pipeline.reporting.charts import Series, line_chart, parse_time


def points(svg: str) -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, p.split(","))) for p in m.split()] for m in re.findall(r'points="([^"]+)"', svg)]


def test_line_spans_the_plot_and_higher_values_are_drawn_higher():
    svg = line_chart([Series("a", [0, 1, 2], [1.0, 3.0, 2.0])], title="t", x_kind="index", x_labels=["d0", "d1", "d2"])
    (line,) = points(svg)
    xs = [p[0] for p in line]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert line[1][1] < line[2][1] < line[0][1]  # SVG y grows downwards
    assert ">d0<" in svg and ">d2<" in svg


def test_missing_values_break_the_line_and_lone_points_are_dots():
    ys = [1.0 + i / 100 for i in range(50)] + [math.nan, None, 5.0]  # too many points to mark each one
    svg = line_chart([Series("a", list(range(len(ys))), ys)], title="t", x_kind="index")
    assert len(points(svg)) == 1 and len(points(svg)[0]) == 50
    assert svg.count("<circle") == 1
    few = line_chart([Series("a", [0, 1, 2, 3, 4], [1.0, 2.0, math.nan, None, 5.0])], title="t", x_kind="index")
    assert few.count("<circle") == 3  # few points: each one marked


def test_axes_are_labelled_and_the_legend_keeps_whole_names():
    long = "volatility_voltarget_volumef_efa1c8_with_a_long_tail@12"
    svg = line_chart([Series(long, [0, 1], [1, 2]), Series("buy and hold BTC-USDT", [0, 1], [1, 1.5], dashed=True)],
                     title="t", x_kind="index", y_label="equity (start = 1)", x_label="run date")
    assert ">equity (start = 1)<" in svg and ">run date<" in svg
    assert f">{long}<" in svg and 'stroke-dasharray="6 4"' in svg


def test_labels_and_title_are_escaped():
    svg = line_chart([Series("<script>x</script>", [0, 1], [1, 2])], title='"><script>', x_kind="index")
    assert "<script" not in svg and "&lt;script&gt;" in svg


def test_nothing_to_draw_gives_a_note_not_an_empty_chart():
    out = line_chart([Series("a", [0, 1], [None, math.nan])], title="Equity <x>")
    assert "<svg" not in out and "Equity &lt;x&gt;: no data to chart." in out


def test_time_axis_labels_dates():
    xs = [parse_time("2026-01-01T00:00:00Z"), parse_time("2026-01-20T00:00:00+00:00")]
    svg = line_chart([Series("eq", xs, [1.0, 1.1])], title="t")
    assert ">2026-01-01<" in svg and ">2026-01-20<" in svg
    assert parse_time("2026-01-01T00:00:00") == parse_time("2026-01-01T00:00:00+00:00")
    assert parse_time("not a time") is None
