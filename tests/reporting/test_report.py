"""The daily report on a hand-built database (SQLite, and PostgreSQL when reachable): sections,
synthetic notice, escaping, writes."""
from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pytest

from blofin_pipeline.backtest import stats
from blofin_pipeline.config import PipelineConfig
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.ranking.ranker import keep_top_models, keep_top_strategies
from blofin_pipeline.reporting import build_report, merge_ai_review, write_report
from blofin_pipeline.reporting.html import render_report
from blofin_pipeline.reporting.sections import SECTIONS
from blofin_pipeline.store import Store, utc_now
from tests.reporting.seed import add_ensemble, add_model, add_result, add_scored

DAY = "2026-01-05"
EVIL = '<script>alert("x")</script>'


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        s.migrate()
        yield s


def seed_day(store: Store) -> None:
    """Two days of results, a ranking, ML rows, activity, a gap, a step log and LLM usage."""
    add_scored(store, "2026-01-04", "trend_a", [0.2, 0.1])
    add_scored(store, DAY, "trend_a", [0.9, 0.7], equity=[100, 101, 103, 102, 106])
    add_scored(store, DAY, "trend_b", [0.5, 0.3], max_drawdown=-0.4, equity=[100, 99, 98, 97, 99])
    add_scored(store, DAY, "mom_c", [0.4, -0.2], category="momentum", deflated_sharpe=0.97)
    add_scored(store, DAY, "bad_d", [-0.5, -0.6], category="mean_reversion")
    add_scored(store, DAY, "designed_e", [0.1, 0.0], category="volume", status="active", origin="designer",
               created_run_date=DAY)  # accepted by its checks that day
    store.upsert("knowledge_base", [{"run_date": DAY, "kind": "designed", "subject": "designed_e@1",
                                     "detail": "{}", "created_at": utc_now()}], key=("run_date", "kind", "subject"))
    keep_top_strategies(store, DAY, count=3)
    for name, f1 in [("lgbm_btc", 0.6), ("logreg_btc", 0.4)]:
        add_model(store, DAY, name, f1=f1)
    keep_top_models(store, DAY, count=1)
    add_ensemble(store, DAY, "vote_btc", accuracy=0.55)
    store.upsert("knowledge_base", [{"run_date": DAY, "kind": "rejected", "subject": "peeker@1",
                                     "detail": json.dumps({"reasons": ["lookahead at bar 17"]}),
                                     "created_at": utc_now()}], key=("run_date", "kind", "subject"))
    store.upsert("candle_gaps", [{"symbol": "BTC-USDT", "timeframe": "1H", "gap_start": 1767225600000,
                                  "gap_end": 1767232800000, "missing_bars": 3, "run_date": DAY}],
                 key=("symbol", "timeframe", "gap_start"))
    store.upsert("pipeline_runs", [
        {"run_date": DAY, "step": "score_strategies", "status": "success", "started_at": "2026-01-05T00:00:00+00:00",
         "ended_at": "2026-01-05T00:02:00+00:00", "duration_s": 120.0, "error": None, "summary": None},
        {"run_date": DAY, "step": "train_ml_models", "status": "failed", "started_at": "2026-01-05T00:03:00+00:00",
         "ended_at": "2026-01-05T00:04:00+00:00", "duration_s": 60.0, "error": "ModelError: no data\ntraceback",
         "summary": None}], key=("run_date", "step"))
    store.upsert("llm_usage", [
        {"run_date": DAY, "step": "design", "attempt_id": f"att_{i}", "request_id": "req_same",
         "model": "claude-opus", "mode": "direct", "input_tokens": 1000, "output_tokens": 500,
         "cache_creation_tokens": 0, "cache_read_tokens": 300 * i, "usd": 0.05, "latency_ms": 900.0,
         "status": "ok", "created_at": f"{utc_now()}.{i}"} for i in range(2)], key=("attempt_id",))


def build(store: Store, synthetic: bool = True) -> dict:
    return build_report(store, DAY, synthetic=synthetic, config_dict=PipelineConfig().to_dict())


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.ids += [v for k, v in attrs if k == "id"]
        self.scripts += tag == "script"


def parse(page: str) -> _Ids:
    p = _Ids()
    p.feed(page)
    return p


def test_report_has_every_section_with_the_day_facts(store):
    seed_day(store)
    report = build(store)
    json.dumps(report, allow_nan=False)  # JSON-able, no NaN
    assert [r["strategy"] for r in report["leaderboard"]][:3] == ["trend_a@1", "trend_b@1", "mom_c@1"]
    assert report["leaderboard"][0]["score"] == pytest.approx(0.8)
    assert report["leaderboard"][3]["decision"] == "archived"
    s = report["summary"]
    assert (s["strategies_scored"], s["strategies_ranked"], s["strategies_kept"], s["strategies_archived"]) == (5, 5, 3, 2)
    assert s["failed_steps"] == ["train_ml_models"]
    assert report["top_performers"]["models"][0]["model_name"] == "lgbm_btc"
    assert [m["model_name"] for m in report["models"]] == ["lgbm_btc", "logreg_btc"]
    assert report["ensembles"][0]["members"] == ["a", "b"]
    a = report["activity"]
    assert a["designed"] == {"count": 1, "names": ["designed_e@1"]}
    assert a["rejected"]["items"] == [{"name": "peeker@1", "reasons": ["lookahead at bar 17"]}]
    assert a["archived"]["strategies"] == ["bad_d@1", "designed_e@1"] and a["archived"]["models"] == ["logreg_btc"]
    t = report["trends"]
    assert t["dates"] == ["2026-01-04", DAY]
    assert t["top_score"] == pytest.approx([0.15, 0.8]) and t["n_kept"] == [None, 3]
    assert t["vs_previous"]["top_score"] == pytest.approx(0.65)
    h = report["portfolio_health"]
    assert h["by_category"]["trend"]["kept"] == 2 and h["by_category"]["volume"]["kept"] == 0
    assert h["concentration"]["top_category"] == "trend"
    assert h["concentration"]["hhi"] == pytest.approx((2 / 3) ** 2 + (1 / 3) ** 2)
    assert h["by_symbol"]["ETH-USDT"] == {"kept_scored": 3, "positive": 2, "mean_score": pytest.approx(0.8 / 3),
                                          "best": "trend_a@1", "best_score": 0.7}
    assert h["drawdowns"][0] == {"strategy": "trend_b@1", "max_drawdown": -0.4, "symbol": "BTC-USDT"}
    assert h["significant"] == ["mom_c@1"]
    assert any("concentration: 67% of the kept strategies are trend" in f for f in h["flags"])
    assert any("max drawdown at or below -25%" in f for f in h["flags"])
    assert report["data_quality"]["n_gaps"] == 1 and report["data_quality"]["missing_bars"] == 3
    assert report["data_quality"]["gaps"][0]["gap_start"] == "2026-01-01T00:00+00:00"
    assert [st["step"] for st in report["steps"]] == ["score_strategies", "train_ml_models"]
    u = report["llm_usage"]
    assert (u["calls"], u["input_tokens"], u["output_tokens"], u["cache_read_tokens"]) == (2, 2000, 1000, 300)
    assert u["usd"] == pytest.approx(0.10)
    assert [c["cache_read_tokens"] for c in u["attempts"]] == [0, 300]  # every call, with its cache figures
    # the leaders on every symbol (not their best one), each curve starting at 1
    assert [(e["symbol"], [c["strategy"] for c in e["curves"]]) for e in report["equity"]] == [
        ("BTC-USDT", ["trend_a@1", "trend_b@1"]), ("ETH-USDT", ["trend_a@1", "trend_b@1"])]
    assert report["equity"][0]["curves"][0]["points"][0][1] == 1.0
    assert report["changes"] is None  # no ranking before this date to compare with
    assert "sharpe" in report["definitions"]["score"] and "Lopez de Prado" in report["definitions"]["deflated_sharpe"]

    page = render_report(report)
    ids = parse(page).ids
    for sid, _ in SECTIONS:
        assert sid in ids, sid
    assert page.count("<svg") == 2 * 2 + 2 and "<polyline" in page  # equity and drawdown per symbol, 2 trends
    assert parse(page).scripts == 0 and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_changes_since_the_previous_ranking(store):
    before = "2026-01-04"
    for name, score in (("a", 0.9), ("b", 0.5), ("c", 0.4), ("gone", 0.1)):
        add_scored(store, before, name, [score, score])
    keep_top_strategies(store, before, count=4)
    store.execute("DELETE FROM strategy_status_history WHERE name = 'gone'")  # not in today's portfolio
    for name, score in (("a", 0.3), ("b", 0.8), ("c", 0.2), ("new", 0.6)):
        add_scored(store, DAY, name, [score, score])
    keep_top_strategies(store, DAY, count=3)
    changes = build(store)["changes"]
    assert changes == {"previous_date": before, "new": ["new@1"], "archived": ["c@1"], "left": ["gone@1"],
                       "moved": [{"strategy": "a@1", "from": 1, "to": 3}, {"strategy": "b@1", "from": 2, "to": 1}]}
    page = render_report(build(store))
    assert "Since the previous day (2026-01-04)" in page and "a@1: #1 \u2192 #3" in page


def test_synthetic_banner_iff_synthetic(store):
    seed_day(store)
    synthetic = build(store, synthetic=True)
    real = build(store, synthetic=False)
    assert synthetic["data_notice"].startswith("SYNTHETIC DATA") and synthetic["synthetic"] is True
    assert "SYNTHETIC" not in real["data_notice"] and real["synthetic"] is False
    assert "(SYNTHETIC data)" in synthetic["summary"]["text"]
    page = render_report(synthetic)
    assert 'class="banner synthetic"' in page and "SYNTHETIC DATA" in page
    real_page = render_report(real)
    assert "SYNTHETIC" not in real_page and 'class="banner synthetic"' not in real_page


def test_html_escapes_untrusted_names_and_review_text(store, tmp_path):
    add_scored(store, DAY, EVIL, [0.5, 0.5], category="trend", equity=[1, 2, 3])
    add_model(store, DAY, "<img src=x onerror=alert(1)>", f1=0.5)
    keep_top_strategies(store, DAY, count=1)
    report = build(store)
    report["ai_review"] = {"mode": "llm", "summary": "</p><script>steal()</script>", "working": [EVIL],
                           "not_working": [], "risks": [], "recommendations": []}
    page = render_report(report)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;@1" in page
    assert "&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;" in page
    assert parse(page).scripts == 0


def test_write_report_writes_files_and_upserts_once_per_date(store, tmp_path):
    seed_day(store)
    reports = tmp_path / "reports"
    json_path, html_path = write_report(store, DAY, build(store), reports)
    assert json_path == reports / f"{DAY}.json" and html_path == reports / f"{DAY}.html"
    on_disk = json.loads(json_path.read_text())
    assert on_disk["run_date"] == DAY and on_disk["synthetic"] is True
    assert html_path.read_text().startswith("<!DOCTYPE html>")
    write_report(store, DAY, build(store), reports)
    rows = store.query("SELECT * FROM daily_reports")
    assert len(rows) == 1
    row = rows[0]
    assert row["synthetic_data"] == 1 and row["json_path"] == str(json_path) and row["ai_review"] is None
    assert json.loads(row["report"])["summary"]["strategies_kept"] == 3
    assert "(SYNTHETIC data)" in row["summary"]
    assert sorted(p.name for p in reports.iterdir()) == [f"{DAY}.html", f"{DAY}.json", f"{DAY}.signals.json",
                                                         "index.html", "index.json"]
    assert json.loads((reports / f"{DAY}.signals.json").read_text()) == on_disk["signals"]


def test_merge_ai_review_keeps_the_rest_and_a_new_report_replaces_it(store, tmp_path):
    seed_day(store)
    reports = tmp_path / "reports"
    report = build(store)
    json_path, html_path = write_report(store, DAY, report, reports)
    before = json.loads(json_path.read_text())
    review = {"mode": "rule-based", "summary": "Trend works.", "working": ["trend_a@1 (score 0.80)"],
              "not_working": ["bad_d@1"], "risks": ["concentration"], "recommendations": ["design volume"]}
    merge_ai_review(store, DAY, review, reports)
    after = json.loads(json_path.read_text())
    assert after["ai_review"] == review
    assert {k: v for k, v in after.items() if k != "ai_review"} == {k: v for k, v in before.items() if k != "ai_review"}
    row = store.query("SELECT ai_review, ai_review_mode, report FROM daily_reports")[0]
    assert row["ai_review_mode"] == "rule-based" and json.loads(row["ai_review"]) == review
    assert json.loads(row["report"])["ai_review"] == review
    page = html_path.read_text()
    assert "Trend works." in page and "design volume" in page and "Recommendations" in page
    # generate_report again (the date runs again): a new report, without the old run's review
    write_report(store, DAY, build(store), reports)
    row = store.query("SELECT ai_review, ai_review_mode FROM daily_reports")[0]
    assert row["ai_review_mode"] is None and row["ai_review"] is None
    assert json.loads(json_path.read_text())["ai_review"] is None
    assert "design volume" not in html_path.read_text()


def test_the_review_cost_is_in_the_report_after_the_review(store, tmp_path):
    seed_day(store)
    write_report(store, DAY, build(store), tmp_path)
    store.upsert("llm_usage", [{"run_date": DAY, "step": "review", "attempt_id": "att_r1", "request_id": "r1",
                                "model": "claude-opus", "mode": "direct", "input_tokens": 3000, "output_tokens": 900,
                                "cache_creation_tokens": 0, "cache_read_tokens": 0, "usd": 0.12,
                                "latency_ms": 800.0, "status": "ok", "created_at": utc_now()}], key=("attempt_id",))
    merge_ai_review(store, DAY, {"mode": "llm", "summary": "s"}, tmp_path)
    report = json.loads((tmp_path / f"{DAY}.json").read_text())
    assert report["summary"]["llm_usd"] == pytest.approx(0.22) == pytest.approx(report["llm_usage"]["usd"])
    assert "LLM $0.22" in report["summary"]["text"]
    assert "review" in {r["step"] for r in report["llm_usage"]["by_step_model"]}


def test_merge_ai_review_without_a_report_fails_clearly(store, tmp_path):
    with pytest.raises(PipelineError, match=f"no daily report for {DAY}"):
        merge_ai_review(store, DAY, {"mode": "llm"}, tmp_path)


def test_empty_day_still_reports(store, tmp_path):
    report = build(store, synthetic=False)
    assert report["leaderboard"] == [] and report["trends"]["dates"] == []
    assert "no strategy was scored on this date" in report["summary"]["flags"]
    page = render_report(report)
    assert "no data to chart" in page
    for sid, _ in SECTIONS:
        assert f'id="{sid}"' in page


def test_report_without_ranking_orders_by_score_and_uses_registry_status(store):
    add_scored(store, DAY, "x", [0.1, 0.1])
    add_scored(store, DAY, "y", [0.3, 0.3])
    add_result(store, DAY, "y", "SOL-USDT", None)
    report = build(store)
    assert [(r["rank"], r["strategy"]) for r in report["leaderboard"]] == [(1, "y@1"), (2, "x@1")]
    assert report["leaderboard"][0]["score"] == pytest.approx(0.3)  # the missing SOL score is left out
    assert report["summary"]["strategies_kept"] == 2  # both active in the registry


def test_equity_chart_is_normalised_and_skips_bad_curves(store):
    add_scored(store, DAY, "a", [0.5, 0.5], equity=[200, 220, 180])
    store.execute("UPDATE strategy_backtest_results SET equity_curve = 'not json' WHERE symbol = 'ETH-USDT'")
    add_scored(store, DAY, "b", [0.4, 0.4])
    store.execute("UPDATE strategy_backtest_results SET equity_curve = 'not json' WHERE strategy = 'b'")
    report = build(store)
    assert [(e["symbol"], [c["strategy"] for c in e["curves"]]) for e in report["equity"]] == [("BTC-USDT", ["a@1"])]
    page = render_report(report)
    equity = page[page.index('id="equity-curves"'):page.index('id="score-trends"')]
    assert re.search(r">1\.\d0<", equity)  # y ticks around the normalised start of 1
    assert "<polyline" in equity


def test_scored_but_unranked_strategy_is_listed_last_and_not_kept(store):
    add_scored(store, DAY, "x", [0.1, 0.1])
    add_scored(store, DAY, "y", [0.3, 0.3])
    keep_top_strategies(store, DAY, count=5)
    add_scored(store, DAY, "late", [0.9, 0.9], status="archived")  # e.g. a candidate that failed afterwards
    report = build(store)
    assert [(r["rank"], r["strategy"]) for r in report["leaderboard"]] == [(1, "y@1"), (2, "x@1"), (None, "late@1")]
    s = report["summary"]
    assert (s["strategies_scored"], s["strategies_ranked"], s["strategies_kept"]) == (3, 2, 2)
    assert s["best_strategy"] == "y@1"


def test_day_links_and_the_index_follow_the_days_that_exist(store, tmp_path):
    """Reports written out of date order (a backfill after a later day): every page links
    to the days around it, and the index flags the day made before the days it reads."""
    seed_day(store)
    base = build(store)
    made = {"2026-01-07": "2026-02-01T00:00:00+00:00", "2026-01-05": "2026-02-02T00:00:00+00:00",
            "2026-01-06": "2026-02-03T00:00:00+00:00"}
    for day, when in made.items():
        write_report(store, day, {**base, "run_date": day, "generated_at": when}, tmp_path)

    def links(day: str) -> tuple:
        page = (tmp_path / f"{day}.html").read_text()
        found = dict(re.findall(r'<a id="(previous-day|next-day)" href="([^"]+)"', page))
        return found.get("previous-day"), found.get("next-day")

    assert links("2026-01-05") == (None, "2026-01-06.html")
    assert links("2026-01-06") == ("2026-01-05.html", "2026-01-07.html")
    assert links("2026-01-07") == ("2026-01-06.html", None)
    index = (tmp_path / "index.html").read_text()
    assert [d for d in re.findall(r'href="(\d{4}-\d\d-\d\d)\.html"', index)] == ["2026-01-07", "2026-01-06",
                                                                                "2026-01-05"]
    assert "made before 2026-01-05, 2026-01-06 ran: run 2026-01-07 again to include them" in index
    assert index.count("again to include them") == 1
    assert [e["date"] for e in json.loads((tmp_path / "index.json").read_text())] == sorted(made)


def test_power_section_prints_n_t_and_the_sharpe_needed(store, tmp_path):
    """Decision 7: N (every (item, symbol) series recorded on or before the date), T (the
    results' out-of-sample bars), the Sharpe needed for DSR 0.95, each row's track records."""
    from blofin_pipeline.store.registry import record_trials

    add_scored(store, DAY, "trend_a", [0.9, 0.7], oos_bars=2160)
    add_scored(store, DAY, "trend_b", [-0.5, -0.2], oos_bars=2160)
    record_trials(store, "2026-01-04", [(f"old_{i}@1", 2) for i in range(68)])
    record_trials(store, DAY, [("trend_a@1", 2), ("trend_b@1", 2)])
    record_trials(store, "2026-01-06", [("later@1", 2)])  # a later date never counts
    report = build(store)
    power = report["power"]
    assert (power["n_trials"], power["oos_bars"], power["oos_days"]) == (140, 2160, 90)
    assert power["required_sharpe_annual"] == pytest.approx(8.65, abs=0.01)  # issue 11's figure
    assert "N = 140 trials" in report["summary"]["text"] and "8.65" in report["summary"]["text"]
    rows = {r["strategy"]: r for r in report["leaderboard"]}
    assert rows["trend_a@1"]["min_trl_days"] == pytest.approx(
        stats.min_track_record_length(0.8 / math.sqrt(8760)) / 24)
    assert rows["trend_b@1"]["dsr_trl_days"] is None  # a negative Sharpe never gets there
    page = render_report(report)
    assert 'id="power"' in page and "8.65" in page
    assert "trial_count" in report["definitions"] and "power" in report["definitions"]


def test_no_results_no_power(store):
    assert build(store)["power"] is None
