"""The local server the way a person uses it: trigger with changed params through the REST
API (token from /auth/token, no logical date), then look at the result in headless Debian
chromium (grid, run, task log, Trigger form, HTML report) and stop the server cleanly.

Screenshots: workspace/screenshots/server_ui/ (git-ignored; $BLOFIN_SCREENSHOTS overrides
the root folder).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import DAG_ID, E2E_CONF, ROOT, AirflowServer, read_json, screenshots_dir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e_server_ui")]

CHROMIUM = "/usr/bin/chromium"
TOP_LEVEL_TASKS = ["ingest_candles", "score_strategies", "research", "backtest_candidates", "rank_and_update",
                   "generate_report", "ai_review"]
REPORT_SECTIONS = ["Summary", "Leaderboard", "Portfolio health", "Activity", "Data quality", "Steps", "LLM usage",
                   "AI review"]
ALL_TASKS = {"ingest_candles", "score_strategies", "research.design_strategies", "research.tune_strategies",
             "research.train_ml_models", "backtest_candidates", "rank_and_update", "generate_report", "ai_review"}


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; playwright drives it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("python package playwright is not installed (pip install playwright==1.65.2; "
                    "no browser download needed: Debian chromium is used)")
    if not os.path.exists(CHROMIUM):
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            pytest.skip("chromium is not installed and apt-get is not usable here (install Debian's chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, timeout=600)
        done = subprocess.run([apt, "install", "-y", "-qq", "chromium"], env=env, capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0 or not os.path.exists(CHROMIUM):
            pytest.skip(f"chromium could not be installed with apt-get: {done.stderr[-500:]}")
    return CHROMIUM


@pytest.fixture(scope="module")
def ui_run(local_airflow: AirflowServer) -> dict:
    """A run triggered like a person would through the REST API, with one param changed."""
    srv = local_airflow
    srv.unpause()
    run = srv.trigger({**E2E_CONF, "n_designs": 2})
    states = srv.wait_runs([run["dag_run_id"]])
    assert states[run["dag_run_id"]] == "success", srv.describe_failures(run["dag_run_id"])
    return run


def test_rest_trigger_without_logical_date_runs_with_the_changed_params(local_airflow: AirflowServer,
                                                                       ui_run: dict) -> None:
    assert ui_run["logical_date"] is None
    assert ui_run["run_type"] == "manual"
    stored = local_airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{ui_run['dag_run_id']}")
    assert stored["conf"]["n_designs"] == 2
    assert stored["state"] == "success"
    tis = local_airflow.task_instances(ui_run["dag_run_id"])
    assert {t["task_id"] for t in tis} == ALL_TASKS
    assert sorted(t["map_index"] for t in tis if t["task_id"] == "score_strategies") == [0, 1]
    # The run's date comes from run_after (no logical date): its report is written under it.
    run_date = ui_run["run_after"][:10]
    report = read_json(local_airflow.workspace / "data" / "reports" / f"{run_date}.json")
    assert report["run_date"] == run_date
    assert report["config"]["n_designs"] == 2  # the changed param reached the tasks
    assert report["summary"]["failed_steps"] == []
    log = local_airflow.task_log(ui_run["dag_run_id"], "ingest_candles")
    assert f"step ingest_candles for {run_date} started" in log


def test_browser_shows_grid_log_trigger_form_and_report(local_airflow: AirflowServer, ui_run: dict,
                                                        chromium: str) -> None:
    srv = local_airflow
    run_id = ui_run["dag_run_id"]
    run_date = ui_run["run_after"][:10]
    report_html = srv.workspace / "data" / "reports" / f"{run_date}.html"
    out = screenshots_dir("server_ui")
    result_file = out / "browser_check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "browser_check.py"), "--url", srv.url, "--run-id", run_id,
         "--password", srv.password, "--log-task", "ingest_candles", "--log-task", "score_strategies:1", "--report", str(report_html),
         "--out", str(out), "--chromium", chromium, "--json-out", str(result_file)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_json(result_file)

    # Grid: every top-level task (and the group) in the DAG's order, all green for this run.
    grid = result["grid"]
    assert grid["task_ids"] == TOP_LEVEL_TASKS
    assert grid["states"] == {task: "Success" for task in TOP_LEVEL_TASKS}

    # The run page: its task instances, both mapped scoring chunks, all succeeded.
    rows = result["run"]["task_instances"]
    assert {r["task_id"] for r in rows} == ALL_TASKS
    assert sorted(r["map_index"] for r in rows if r["task_id"] == "score_strategies") == ["0", "1"]
    assert {r["state"] for r in rows} == {"Success"}
    assert "Success" in result["run"]["header"]

    # The task log page tells what was ingested, for which date and up to when.
    ingest_log, score_log = result["logs"]
    lines = "\n".join(ingest_log["lines"])
    assert f"step ingest_candles for {run_date} started" in lines
    for symbol in E2E_CONF["symbols"]:
        assert f"ingest {symbol} 1H:" in lines
    assert "step ingest_candles succeeded" in lines
    # ... and the log of a mapped scoring chunk, reached through its map index.
    assert score_log["map_index"] == 1
    assert "step score_strategies[1] succeeded" in "\n".join(score_log["lines"])

    # The Trigger form shows every param with its description and its default value.
    fields = result["trigger_form"]["fields"]
    details = srv.api("GET", f"/dags/{DAG_ID}/details")["params"]
    assert set(fields) == set(details)
    for name, field in fields.items():
        schema = details[name].get("schema") or {}
        if "const" in schema:  # fixed by the DAG file, not a knob
            continue
        assert field["in_form"] and field["visible"], name
        assert field["description_shown"], f"{name}: description {field['description']!r} not shown"
        default = field["default"]
        if isinstance(default, bool):
            assert field["shown"] is default, name
        elif isinstance(default, list):
            assert field["shown"].split("\n") == default, name
        elif isinstance(default, (int, float)):
            assert float(field["shown"]) == float(default), name
        else:
            assert field["shown"] == default, name

    # The HTML report of the run, opened from disk.
    rep = result["report"]
    assert rep["headings"][0] == f"BloFin research report \u2014 {run_date}"
    for section in REPORT_SECTIONS:
        assert section in rep["headings"], f"report section {section!r} missing: {rep['headings']}"
    assert "SYNTHETIC" in rep["text"]

    for shot in [result[p]["screenshot"] for p in ("grid", "run", "trigger_form", "report")] + [
            log["screenshot"] for log in result["logs"]]:
        assert os.path.getsize(shot) > 10_000, f"screenshot {shot} is (nearly) empty"


def test_airflow_down_stops_every_process(local_airflow: AirflowServer) -> None:
    srv = local_airflow
    assert srv.processes_left(), "the server should still be running before airflow-down.sh"
    stopped = srv.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert srv.processes_left() == []
    assert not (srv.home / "airflow-up.pid").exists()
    again = srv.stop()
    assert again.returncode == 0 and "no Airflow" in again.stdout
