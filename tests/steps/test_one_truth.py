"""One truth per date (issue 13, problems 1-3): a date's rows are a function of the date
and its parameters. A re-run with other parameters replaces them, a re-run of an older
date changes nothing, and a backfill in any order gives the rows of a run in date order."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.store import open_store

A, B, C = "2026-04-10", "2026-04-11", "2026-04-12"
SMALL = dict(symbols=("BTC-USDT", "ETH-USDT"), history_days=60, score_window_days=40,
             wf_train_days=20, wf_folds=4, n_designs=2, n_tunes=1,
             tune_trials=4, top_strategies=10, ml_enabled=False)
# Tables written per run date: (table, columns that say when or by which run, not what)
DATED = {
    "strategy_backtest_results": (), "ml_model_results": (), "ml_ensembles": (), "ranking_history": ("created_at",),
    "knowledge_base": ("created_at",), "research_trials": (), "candle_gaps": (),
    "pipeline_runs": ("started_at", "ended_at", "duration_s", "summary", "run_id", "error"),
}
REGISTRY = {"strategies": ("created_at",), "strategy_status_history": ("created_at",)}
REPORT_RUN_KEYS = ("generated_at", "run", "steps")  # which run made the report, and its step times


def ctx_for(workspace: Path, day: str, **cfg) -> RunContext:
    return RunContext.create(logical_date=day, data_end=day, config=PipelineConfig(**{**SMALL, **cfg}),
                             db_url=f"sqlite:///{workspace / 'data' / 'blofin_monitor.db'}", workspace=workspace)


def run_days(workspace: Path, days: list[str], **cfg) -> None:
    for day in days:
        steps.run_all(ctx_for(workspace, day, **cfg))


def _rows(store, table: str, volatile: tuple[str, ...], where: str = "") -> list[tuple]:
    rows = store.query(f"SELECT * FROM {table} {where}")
    return sorted(tuple(sorted((k, json.dumps(v)) for k, v in r.items() if k not in volatile)) for r in rows)


def _report(store, day: str) -> dict | None:
    text = store.scalar("SELECT report FROM daily_reports WHERE run_date = :d", {"d": day})
    if text is None:
        return None
    report = json.loads(text)
    return {k: v for k, v in report.items() if k not in REPORT_RUN_KEYS}


def date_rows(workspace: Path, day: str) -> dict:
    """Every row the date owns, without the columns that say when it was written."""
    with open_store(ctx_for(workspace, day).db_url) as store:
        out = {t: _rows(store, t, v, f"WHERE run_date = '{day}'") for t, v in DATED.items()}
        out["report"] = _report(store, day)
    return out


def registry_rows(workspace: Path) -> dict:
    with open_store(ctx_for(workspace, A).db_url) as store:
        return {t: _rows(store, t, v) for t, v in REGISTRY.items()}


def test_a_rerun_with_other_parameters_replaces_the_date(tmp_path):
    """Problem 1: a second run of the same date (a UI trigger with one symbol, fewer
    designs) leaves exactly what that run alone would have left."""
    run_days(tmp_path / "twice", [A])
    run_days(tmp_path / "twice", [A], symbols=("ETH-USDT",), n_designs=1)
    run_days(tmp_path / "once", [A], symbols=("ETH-USDT",), n_designs=1)
    assert date_rows(tmp_path / "twice", A) == date_rows(tmp_path / "once", A)
    assert registry_rows(tmp_path / "twice") == registry_rows(tmp_path / "once")
    report = json.loads((tmp_path / "twice" / "data" / "reports" / f"{A}.json").read_text())
    assert {sym for s in report["leaderboard"] for sym in s["symbols"]} == {"ETH-USDT"}
    assert report["summary"]["designed"] == 1 == report["activity"]["designed"]["count"]
    assert report["config"]["symbols"] == ["ETH-USDT"] and report["run"]["run_id"].startswith("local__")


def test_a_rerun_of_an_older_date_changes_nothing(tmp_path):
    """Problem 2: re-running A after B neither adds designs nor an `@2`, nor re-activates
    what B archived: every row of A and B and the registry stay as they were."""
    run_days(tmp_path, [A, B], top_strategies=8)
    before = {d: date_rows(tmp_path, d) for d in (A, B)}, registry_rows(tmp_path)
    run_days(tmp_path, [A], top_strategies=8)
    after = {d: date_rows(tmp_path, d) for d in (A, B)}, registry_rows(tmp_path)
    assert after == before
    with open_store(ctx_for(tmp_path, A).db_url) as store:
        assert store.scalar("SELECT MAX(version) AS v FROM strategies WHERE origin IN ('designer', 'tuner')") == 1


@pytest.mark.slow
def test_a_backfill_in_any_order_gives_the_rows_of_a_run_in_date_order(tmp_path):
    """Problem 3: C first, then the backfill of A and B: A and B see nothing of C (no
    survivorship), so their rows are those of a run in date order; C, computed before its
    history existed, gets them too once it is run again."""
    run_days(tmp_path / "in_order", [A, B, C])
    run_days(tmp_path / "backfill", [C, A, B])
    in_order = {d: date_rows(tmp_path / "in_order", d) for d in (A, B, C)}
    for day in (A, B):
        assert date_rows(tmp_path / "backfill", day) == in_order[day], day
    run_days(tmp_path / "backfill", [C])
    assert {d: date_rows(tmp_path / "backfill", d) for d in (A, B, C)} == in_order
    assert registry_rows(tmp_path / "backfill") == registry_rows(tmp_path / "in_order")


@pytest.mark.slow
def test_ml_strategies_are_ranked_like_the_others_and_one_per_date(tmp_path):
    """Problem 3: an ML ensemble-as-strategy used to be ranked once and stay active forever.
    Each date's is ranked that date; the next date's supersedes it."""
    run_days(tmp_path, [A, B], ml_enabled=True, top_strategies=30, history_days=90, score_window_days=60,
             wf_train_days=30)
    with open_store(ctx_for(tmp_path, A).db_url) as store:
        ml = store.query("SELECT name, version, status, archive_reason, created_run_date FROM strategies "
                         "WHERE origin = 'ml' ORDER BY created_run_date")
        ranked = {(r["run_date"], r["item"]) for r in store.query(
            "SELECT run_date, item FROM ranking_history WHERE item_type = 'strategy'")}
    assert [r["created_run_date"] for r in ml] == [A, B]
    first, second = (f"{r['name']}@{r['version']}" for r in ml)
    assert (A, first) in ranked and (B, second) in ranked
    assert ml[0]["status"] == "archived" and ml[0]["archive_reason"] == f"superseded by {second}"
    assert ml[1]["status"] == "active"  # 30 kept: nothing else archives it
