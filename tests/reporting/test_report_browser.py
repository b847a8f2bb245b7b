"""The report v2 as a person sees it (issue 13, problem 9): two real days rendered by
headless Debian chromium. Charts span the page, every label and legend entry lies inside
its chart, axes carry labels, nothing overflows sideways, and the day links and the index
of all days work. Screenshots are kept in the test workspace's ``screenshots/report/``."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline import steps
from tests.steps.test_one_truth import ctx_for

pytestmark = pytest.mark.slow

DAY1, DAY2 = "2026-04-10", "2026-04-11"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
# every chart: its width against the main column's, and every text's box against the chart's
CHART_GEOMETRY = """() => {
  const main = document.querySelector('main').getBoundingClientRect();
  return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
    const box = svg.getBoundingClientRect();
    const cut = Array.from(svg.querySelectorAll('text')).filter(t => {
      const r = t.getBoundingClientRect();
      return r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1;
    }).map(t => t.textContent);
    return {title: svg.getAttribute('aria-label'), width: box.width, main: main.width,
            axis_labels: svg.querySelectorAll('.axis-label').length, cut: cut,
            legend: Array.from(svg.querySelectorAll('.legend')).map(t => t.textContent)};
  });
}"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("report_browser")
    for day in (DAY1, DAY2):
        steps.run_all(ctx_for(workspace, day, top_strategies=8, ml_enabled=True, history_days=90, score_window_days=60,
                              wf_train_days=30))  # ML needs folds long enough to validate on
    return workspace


def test_the_report_reads_well_in_chromium(reports, chromium):
    from playwright.sync_api import sync_playwright

    folder = reports / "data" / "reports"
    shots = reports / "screenshots" / "report"
    shots.mkdir(parents=True, exist_ok=True)
    report = json.loads((folder / f"{DAY2}.json").read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto((folder / f"{DAY2}.html").as_uri())
        page.screenshot(path=str(shots / f"{DAY2}.png"), full_page=True)
        for sid in ("summary", "run", "leaderboard", "changes", "equity-curves", "score-trends", "models",
                    "ensembles", "ai-review", "definitions"):
            page.locator(f"#{sid}").screenshot(path=str(shots / f"{DAY2}-{sid}.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]  # nothing overflows
        charts = page.evaluate(CHART_GEOMETRY)
        page.click("#previous-day")
        previous_title = page.title()
        page.goto((folder / "index.html").as_uri())
        page.screenshot(path=str(shots / "index.png"), full_page=True)
        index_charts = page.evaluate(CHART_GEOMETRY)
        days = page.locator("#days tbody tr").count()
        browser.close()
    # equity and drawdown on every symbol, two trend charts, the forward record's when it has curves
    forward = 1 if report["forward"]["curves"] else 0
    assert len(charts) == 2 * len(report["equity"]) + 2 + forward and len(report["equity"]) == 2
    for chart in charts + index_charts:
        assert chart["width"] >= 0.9 * chart["main"] - 40, chart["title"]  # full width
        assert chart["axis_labels"] == 2, chart["title"]
        assert chart["cut"] == [], f"{chart['title']}: labels outside the chart: {chart['cut']}"
    first = report["equity"][0]
    equity = next(c for c in charts if c["title"] == f"{first['symbol']}: equity of the leaders")
    assert equity["legend"] == [*(c["strategy"] for c in first["curves"]), f"buy and hold {first['symbol']}"]
    assert report["models"] and all(m["majority_accuracy"] is not None for m in report["models"])
    assert DAY1 in previous_title
    assert days == 2 and len(index_charts) == 1
