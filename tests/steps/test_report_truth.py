"""One source of truth for every figure of the report (issue 13, problem 5), and logs that
name what was decided (problem 10): a real two-day run, its JSON, its HTML and its review
compared figure by figure."""
from __future__ import annotations

import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from blofin_pipeline import steps
from blofin_pipeline.store import open_store
from tests.steps.test_one_truth import ctx_for

DAY1, DAY2 = "2026-04-10", "2026-04-11"


class Page(HTMLParser):
    """The text of every element with an id or a data-key, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        key = a.get("data-key") or a.get("id")
        if tag == "a" and a.get("id"):
            self.links[a["id"]] = a.get("href")
        if tag in ("br", "meta", "line", "rect", "circle", "polyline"):
            return
        self._open.append(key)
        if key:
            self.by_key.setdefault(key, "")

    def handle_endtag(self, tag):
        if tag not in ("br", "meta", "line", "rect", "circle", "polyline") and self._open:
            self._open.pop()

    def handle_data(self, data):
        for key in self._open:
            if key:
                self.by_key[key] += data


def page(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


def kpi(p: Page, key: str) -> str:
    return re.sub(r"^[a-z ()A-Z]+", "", p.by_key[key].strip()).strip()


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("truth")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("blofin_pipeline")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for day in (DAY1, DAY2):
            steps.run_all(ctx_for(workspace, day, top_strategies=8))
        again = ctx_for(workspace, DAY2, top_strategies=8)  # the date once more: the report must be of this run
        steps.run_all(again)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return workspace, again, [r.getMessage() for r in records]


def test_every_figure_of_the_report_has_one_value(two_days):
    workspace, ctx, _ = two_days
    reports = workspace / "data" / "reports"
    report = json.loads((reports / f"{DAY2}.json").read_text())
    html = page(reports / f"{DAY2}.html")
    s, a, board, review = report["summary"], report["activity"], report["leaderboard"], report["ai_review"]

    # the best strategy: summary, leaderboard, page and review name the same one
    assert s["best_strategy"] == board[0]["strategy"] == html.by_key["best-strategy"]
    assert board[0]["rank"] == 1
    assert f"leader {board[0]['strategy']} " in review["summary"]
    leads = [w for w in review["working"] if "leads the ranking" in w]
    assert len(leads) <= 1 and all(w.startswith(board[0]["strategy"]) for w in leads)

    # archived, designed, tuned: one count each, wherever it is shown
    archived = [r["strategy"] for r in board if r["decision"] == "archived"]
    assert s["strategies_archived"] == len(a["archived"]["strategies"]) == len(archived) > 0
    assert sorted(archived) == a["archived"]["strategies"]
    assert kpi(html, "strategies_archived") == str(len(archived))
    assert f"({len(archived)})" in html.by_key["archived-strategies"]
    assert review["facts"]["archived"] == len(archived)
    for key, section in (("designed", "designed"), ("tuned", "tuned")):
        assert s[key] == a[section]["count"] == review["facts"][key] == int(kpi(html, key))
    assert s["strategies_kept"] == sum(r["decision"] == "kept" for r in board) == int(kpi(html, "strategies_kept"))

    # no advice to tune or archive what the ranking archived, no name twice in one piece of advice
    for text in review["recommendations"]:
        names = re.findall(r"[a-z0-9_]+@\d+", text)
        assert len(names) == len(set(names)), text
        if "tune or archive" in text:
            assert not set(names) & set(archived), text

    # the steps table: this run's steps, none of the reporting steps that write the page
    steps_shown = {r["step"] for r in report["steps"]}
    assert report["run"]["run_id"] == ctx.run_id
    assert not steps_shown & {"generate_report", "ai_review"}
    assert all(r["status"] == "success" for r in report["steps"])
    with open_store(ctx.db_url) as store:
        mine = {r["step"] for r in store.query("SELECT step FROM pipeline_runs WHERE run_date = :d AND run_id = :r",
                                               {"d": DAY2, "r": ctx.run_id})}
    assert steps_shown == mine - {"generate_report", "ai_review", "check_run"}  # check_run comes after the page

    # the LLM cost: the summary's is the usage section's
    assert s["llm_usd"] == report["llm_usage"]["usd"]
    assert kpi(html, "llm_usd") == f"${report['llm_usage']['usd']:.2f}"


def test_the_run_its_parameters_the_days_around_it(two_days):
    workspace, ctx, _ = two_days
    reports = workspace / "data" / "reports"
    first, second = page(reports / f"{DAY1}.html"), page(reports / f"{DAY2}.html")
    assert first.links["next-day"] == f"{DAY2}.html" and "previous-day" not in first.links
    assert second.links["previous-day"] == f"{DAY1}.html" and "next-day" not in second.links
    assert ctx.run_id in second.by_key["run"]
    assert "score_window_days" in second.by_key["run-params"] and "top_strategies8" in second.by_key["run-params"]
    assert "Lopez de Prado" in second.by_key["definitions"] and "0.4 * S" in second.by_key["definitions"]
    index = (reports / "index.html").read_text()
    assert index.index(f'href="{DAY2}.html"') < index.index(f'href="{DAY1}.html"')  # newest first
    report = json.loads((reports / f"{DAY2}.json").read_text())
    assert report["changes"]["previous_date"] == DAY1
    assert set(report["changes"]["archived"]) == set(report["activity"]["archived"]["strategies"])
    assert all(e["benchmark"] for e in report["equity"])  # buy and hold beside every symbol's leaders
    assert {e["symbol"] for e in report["equity"]} == set(ctx.config.symbols)


def test_the_logs_name_what_was_archived_and_what_is_recommended(two_days):
    workspace, ctx, messages = two_days
    report = json.loads((workspace / "data" / "reports" / f"{DAY2}.json").read_text())
    for name in report["activity"]["archived"]["strategies"]:
        line = next(m for m in messages if m.startswith(f"archived strategy {name} on {DAY2}: "))
        assert "rank " in line and " by score (" in line
    for text in report["ai_review"]["recommendations"]:
        assert any(m.startswith("recommendation ") and m.endswith(text) for m in messages), text
