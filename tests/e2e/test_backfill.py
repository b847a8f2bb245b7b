"""Backfill the way an operator does: `airflow backfill create` over three dates on a
running scheduler. Each date must get its own run, ingest only up to its own data interval,
write its own step log and report; re-running one date must not add rows anywhere.
"""
from __future__ import annotations

import json
import sqlite3
import time

import pandas as pd
import pytest

from tests.e2e.conftest import DAG_ID, E2E_CONF, AirflowServer, read_json, table_counts

pytestmark = pytest.mark.slow

DATES = ["2026-11-01", "2026-11-02", "2026-11-03"]
# ML training is the longest step and has nothing to do with dates: the UI and Celery
# tests run it; here it is off to keep four DAG runs within a few minutes.
BACKFILL_CONF = {**E2E_CONF, "ml_enabled": False}
BARS_PER_DAY = 24  # E2E_CONF keeps the default 1H timeframe


def _step_log(db, run_date: str) -> dict[str, dict]:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM pipeline_runs WHERE run_date = ?", (run_date,)).fetchall()
    return {r["step"]: dict(r) for r in rows}


def _backfill_runs(srv: AirflowServer, timeout: float = 120) -> list[dict]:
    """The backfill's runs, once all are created (the CLI queues them, the scheduler runs them)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in srv.dag_runs() if r["run_type"] == "backfill"]
        if len(runs) >= len(DATES) or time.monotonic() > deadline:
            return sorted(runs, key=lambda r: r["logical_date"])
        time.sleep(2)


@pytest.fixture(scope="module")
def backfilled(local_airflow: AirflowServer) -> dict[str, dict]:
    srv = local_airflow
    # Created while the DAG is still paused, then unpaused: SQLite has one writer (CI runs failed
    # the CLI's INSERT with "database is locked" before scripts/env.sh made it wait 60 s).
    done = srv.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", DATES[0], "--to-date", DATES[-1],
                       "--max-active-runs", "1", "--dag-run-conf", json.dumps(BACKFILL_CONF))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    srv.unpause()
    runs = _backfill_runs(srv)
    states = srv.wait_runs([r["dag_run_id"] for r in runs], timeout=1500)
    for run_id, state in states.items():
        assert state == "success", f"{run_id}: {srv.describe_failures(run_id)}"
    return {r["logical_date"][:10]: r for r in runs}


def test_one_run_per_date_with_its_own_interval(backfilled: dict[str, dict]) -> None:
    assert sorted(backfilled) == DATES
    for date, run in backfilled.items():
        assert run["conf"] == BACKFILL_CONF
        # A cron DAG's run at date D covers the data up to D 00:00 UTC.
        assert pd.Timestamp(run["data_interval_end"]) == pd.Timestamp(date, tz="UTC")


def test_each_date_ingests_up_to_its_own_data_end(local_airflow: AirflowServer, backfilled: dict[str, dict]) -> None:
    db = local_airflow.data_db
    for i, date in enumerate(DATES):
        steps = _step_log(db, date)
        assert steps, f"no pipeline_runs rows for {date}"
        assert {s["status"] for s in steps.values()} == {"success"}, steps
        ingest = json.loads(steps["ingest_candles"]["summary"])
        end = pd.Timestamp(date, tz="UTC")
        assert pd.Timestamp(ingest["data_end"]) == end
        for symbol in E2E_CONF["symbols"]:
            got = ingest["symbols"][symbol]
            if i == 0:  # the first run loads the history window before its own end
                assert pd.Timestamp(got["from"]) == end - pd.Timedelta(days=E2E_CONF["history_days"])
                assert got["rows"] == E2E_CONF["history_days"] * BARS_PER_DAY
            else:  # later runs continue where the previous date stopped: exactly one day
                assert pd.Timestamp(got["from"]) == pd.Timestamp(DATES[i - 1], tz="UTC")
                assert got["rows"] == BARS_PER_DAY
    with sqlite3.connect(db) as con:
        last_ms = con.execute("SELECT MAX(ts) FROM candles").fetchone()[0]
    # Nothing at or after the last date's end: no run looked into its future.
    assert pd.Timestamp(last_ms, unit="ms", tz="UTC") == pd.Timestamp(DATES[-1], tz="UTC") - pd.Timedelta(hours=1)


def test_each_date_writes_its_own_report(local_airflow: AirflowServer, backfilled: dict[str, dict]) -> None:
    reports = local_airflow.workspace / "data" / "reports"
    for date in DATES:
        report = read_json(reports / f"{date}.json")
        assert report["run_date"] == date
        assert report["summary"]["failed_steps"] == []
        assert (reports / f"{date}.html").exists()
    with sqlite3.connect(local_airflow.data_db) as con:
        days = [r[0] for r in con.execute("SELECT DISTINCT run_date FROM strategy_backtest_results ORDER BY 1")]
    assert days == DATES


def test_rerunning_a_date_changes_no_row_count(local_airflow: AirflowServer, backfilled: dict[str, dict]) -> None:
    srv = local_airflow
    date = DATES[1]
    run_id = backfilled[date]["dag_run_id"]
    before = table_counts(srv.data_db)
    ended_before = _step_log(srv.data_db, date)["generate_report"]["ended_at"]
    srv.api("POST", f"/dags/{DAG_ID}/clearTaskInstances",
            json={"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True})
    # The cleared run goes back to queued, then runs every task again.
    deadline = time.monotonic() + 60
    while srv.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"] == "success" and time.monotonic() < deadline:
        time.sleep(1)
    assert srv.wait_runs([run_id])[run_id] == "success", srv.describe_failures(run_id)
    ingest = next(t for t in srv.task_instances(run_id) if t["task_id"] == "ingest_candles")
    assert ingest["try_number"] >= 2  # it really ran again
    assert _step_log(srv.data_db, date)["generate_report"]["ended_at"] > ended_before
    after = table_counts(srv.data_db)
    changed = {t: (before.get(t), after.get(t)) for t in set(before) | set(after) if before.get(t) != after.get(t)}
    assert not changed, f"re-running {date} changed row counts: {changed}"
