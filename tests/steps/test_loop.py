"""The whole loop in-process on the embedded default (offline, synthetic), as the DAG runs it."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.store import open_store

TABLES = ["candles", "strategies", "strategy_backtest_results", "ml_model_results", "ml_ensembles", "daily_reports",
          "ranking_history", "knowledge_base", "pipeline_runs", "research_trials", "forward_returns", "signals"]


def make_ctx(tmp_path, day: str, **cfg) -> RunContext:
    settings = dict(symbols=("BTC-USDT", "ETH-USDT"), history_days=120, score_window_days=90,
                    wf_train_days=45, wf_folds=4, n_designs=2,
                    n_tunes=2, tune_trials=6, top_strategies=12)
    config = PipelineConfig(**{**settings, **cfg})
    return RunContext.create(logical_date=day, data_end=day, config=config,
                             db_url=f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}", workspace=tmp_path)


def test_offline_day_designs_tunes_ranks_reports_and_rerun_changes_nothing(tmp_path):
    ctx = make_ctx(tmp_path, "2026-04-10", ml_enabled=False)
    out = steps.run_all(ctx)
    design, tune = out["design_strategies"], out["tune_strategies"]
    assert design["mode"] == "offline" and len(design["designed"]) == 2
    assert tune["mode"] == "offline"
    cand = out["backtest_candidates"]
    assert cand["candidates"] == len(design["designed"]) + len(tune["tuned"])
    assert set(design["designed"]) <= set(cand["accepted"]) | set(cand["rejected"])
    with open_store(ctx.db_url) as store:
        counts = store.table_counts(TABLES)
        statuses = store.query("SELECT name, version, status FROM strategies ORDER BY name, version")
        kept = store.scalar("SELECT COUNT(*) AS n FROM ranking_history WHERE decision = 'kept'")
        steps_ok = store.query("SELECT step, status FROM pipeline_runs ORDER BY step")
        report = json.loads(store.scalar("SELECT report FROM daily_reports WHERE run_date = '2026-04-10'"))
        review = json.loads(store.scalar("SELECT ai_review FROM daily_reports"))
        sharpes = {(r["strategy"], r["symbol"]): r["sharpe"] for r in store.query(
            "SELECT strategy, symbol, sharpe FROM strategy_backtest_results WHERE run_date = '2026-04-10'")}
        tuned = store.query("SELECT name, parent, fitted_until FROM strategies WHERE origin = 'tuner'")
        last_bar = store.scalar("SELECT MAX(ts) AS t FROM candles")
    # a tuned version is scored on its tuning day exactly as its parent (fitted on every bar)
    assert len(tuned) == len(tune["tuned"])  # tests/steps/test_tuned_scoring.py forces a tune
    for t in tuned:
        assert pd.Timestamp(t["fitted_until"]) == pd.Timestamp(last_bar, unit="ms", tz="UTC"), t
        for symbol in ctx.config.symbols:
            assert sharpes[(t["name"], symbol)] == sharpes[(t["parent"].split("@")[0], symbol)]
    assert kept == 12
    assert counts["ranking_history"] == counts["strategies"] - len(cand["rejected"])  # every scored version ranked
    assert all(s["status"] == "success" for s in steps_ok), steps_ok
    assert "SYNTHETIC" in report["data_notice"].upper()
    assert review["mode"] == "rule-based"
    html = (tmp_path / "data" / "reports" / "2026-04-10.html").read_text()
    assert "SYNTHETIC" in html.upper() and 'id="leaderboard"' in html and 'id="ai-review"' in html

    # Same date again (a retry or a backfill): not a row more, the same decisions.
    steps.run_all(ctx)
    with open_store(ctx.db_url) as store:
        assert store.table_counts(TABLES) == counts
        assert store.query("SELECT name, version, status FROM strategies ORDER BY name, version") == statuses


def test_next_day_does_not_repeat_designs_and_learns_from_the_first(tmp_path):
    first = steps.run_all(make_ctx(tmp_path, "2026-04-10", ml_enabled=False))
    second = steps.run_all(make_ctx(tmp_path, "2026-04-11", ml_enabled=False))
    assert set(first["design_strategies"]["designed"]).isdisjoint(second["design_strategies"]["designed"])
    with open_store(make_ctx(tmp_path, "2026-04-11").db_url) as store:
        trend = store.query("SELECT run_date, COUNT(*) AS n FROM ranking_history GROUP BY run_date ORDER BY run_date")
    assert [t["run_date"] for t in trend] == ["2026-04-10", "2026-04-11"]


def test_a_failing_research_branch_does_not_stop_ranking_and_reporting(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("designer exploded")

    monkeypatch.setattr("blofin_pipeline.research.designer.design", broken)
    ctx = make_ctx(tmp_path, "2026-04-10", ml_enabled=False)
    out = steps.run_all(ctx)
    assert "designer exploded" in out["design_strategies"]["error"]
    assert out["generate_report"]["html"].endswith("2026-04-10.html")
    with open_store(ctx.db_url) as store:
        row = store.query("SELECT status, error FROM pipeline_runs WHERE step = 'design_strategies'")[0]
        report = json.loads(store.scalar("SELECT report FROM daily_reports"))
    assert row["status"] == "failed" and "designer exploded" in row["error"]
    assert any(s["step"] == "design_strategies" and s["status"] == "failed" for s in report["steps"])


def test_ranking_refuses_stale_scores(tmp_path):
    from blofin_pipeline.exceptions import PipelineError

    ctx = make_ctx(tmp_path, "2026-04-10", ml_enabled=False)
    steps.ingest_candles(ctx)
    with pytest.raises(PipelineError, match="score_strategies did not succeed for 2026-04-10"):
        steps.rank_and_update(ctx)


@pytest.mark.slow
def test_ml_models_and_ensembles_are_trained_ranked_and_reported(tmp_path):
    ctx = make_ctx(tmp_path, "2026-04-10", n_designs=0, n_tunes=0, top_models=2, top_ensembles=1)
    out = steps.run_all(ctx)
    assert out["train_ml_models"]["models"] == 8   # 4 model types x 2 symbols
    with open_store(ctx.db_url) as store:
        models = store.query("SELECT status FROM ml_model_results")
        ens = store.query("SELECT status FROM ml_ensembles")
        report = json.loads(store.scalar("SELECT report FROM daily_reports"))
    # Kept by kind on the mean over symbols: every symbol's row of a kept kind stays active.
    assert sum(m["status"] == "active" for m in models) == 2 * 2
    assert sum(e["status"] == "active" for e in ens) == 1 * 2
    assert report["models"] and report["ensembles"]
    # The best ensemble is scored and ranked as a strategy beside the rule files.
    ref = out["train_ml_models"]["ensemble_as_strategy"]
    assert ref.startswith("ml_")
    with open_store(ctx.db_url) as store:
        ranked = store.query("SELECT item, decision FROM ranking_history WHERE item_type = 'strategy' AND item = :i",
                             {"i": ref})
    assert len(ranked) == 1
    with open_store(ctx.db_url) as store:
        rows = store.query("SELECT symbol, metrics FROM strategy_backtest_results WHERE phase = 'ml'")
        trials = store.query("SELECT item, n_series FROM research_trials WHERE item LIKE 'ml:%'")
    assert sorted(r["symbol"] for r in rows) == ["BTC-USDT", "ETH-USDT"]   # every symbol, no best one
    assert {t["item"]: t["n_series"] for t in trials} == {
        f"ml:{k}": 2 for k in ("logreg", "extra_trees", "hist_gb", "lgbm", "soft_voting", "stacking",
                               "best_ensemble")}


def test_the_loop_runs_on_postgresql_too(pg_url, tmp_path):
    """The production deployment's data database: same steps, same idempotency."""
    config = PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=40,
                            wf_train_days=20, n_designs=1, n_tunes=1,
                            tune_trials=4, ml_enabled=False)
    ctx = RunContext.create(logical_date="2026-04-10", data_end="2026-04-10", config=config, db_url=pg_url,
                            workspace=tmp_path)
    steps.run_all(ctx)
    with open_store(pg_url) as store:
        counts = store.table_counts(TABLES)
        assert store.scalar("SELECT COUNT(*) AS n FROM daily_reports") == 1
    steps.run_all(ctx)
    with open_store(pg_url) as store:
        assert store.table_counts(TABLES) == counts
    assert (tmp_path / "data" / "reports" / "2026-04-10.html").exists()
