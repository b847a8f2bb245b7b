"""The local server the way a person uses it: trigger with changed params through the REST
API (token from /auth/token, no logical date), then look at the result in headless Debian
chromium (grid, run, task log, Trigger form, HTML report) and stop the server cleanly.

Screenshots: workspace/screenshots/server_ui/latest/ (a folder per run; git-ignored;
$BLOFIN_SCREENSHOTS overrides the root folder).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import DAG_ID, E2E_CONF, ROOT, AirflowServer, read_json, screenshots_dir

pytestmark = pytest.mark.slow  # one worker runs the whole module (--dist loadfile): one server

TOP_LEVEL_TASKS = ["ingest_candles", "plan_scoring", "score_strategies", "research", "backtest_candidates",
                   "rank_and_update", "generate_report", "ai_review", "check_run"]
REPORT_SECTIONS = ["Summary", "Leaderboard", "Portfolio health", "Activity", "Data quality", "Steps", "LLM usage",
                   "AI review"]
ALL_TASKS = {"ingest_candles", "plan_scoring", "score_strategies", "research.design_strategies",
             "research.tune_strategies", "research.ml_market_panel", "research.train_ml_group",
             "research.train_ml_models", "backtest_candidates", "rank_and_update", "generate_report", "ai_review",
             "check_run"}


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


FORM_SUBMIT = {"n_designs": 1, "history_days": 90}


@pytest.fixture(scope="module")
def browser(local_airflow: AirflowServer, ui_run: dict, chromium: str) -> dict:
    """scripts/browser_check.py on the finished run: what chromium showed, as JSON."""
    srv = local_airflow
    # Paused, a run triggered from the form below stays queued: it is looked at, not run.
    srv.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
    run_date = ui_run["run_after"][:10]
    out = screenshots_dir("server_ui")
    result_file = out / "browser_check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "browser_check.py"), "--url", srv.url, "--run-id", ui_run["dag_run_id"],
         "--password", srv.password, "--log-task", "ingest_candles", "--log-task", "score_strategies:1",
         "--report", str(srv.workspace / "data" / "reports" / f"{run_date}.html"),
         "--submit-trigger", json.dumps(FORM_SUBMIT),
         "--out", str(out), "--chromium", chromium, "--json-out", str(result_file)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_json(result_file)


def test_grid_and_run_page_show_every_task_succeeded(browser: dict) -> None:
    # Grid: every top-level task (and the group) in the DAG's order, all green for this run.
    grid = browser["grid"]
    assert grid["task_ids"] == TOP_LEVEL_TASKS
    assert grid["states"] == {task: "Success" for task in TOP_LEVEL_TASKS}
    # The run page: its task instances, both mapped scoring chunks, all succeeded.
    rows = browser["run"]["task_instances"]
    assert {r["task_id"] for r in rows} == ALL_TASKS
    assert sorted(r["map_index"] for r in rows if r["task_id"] == "score_strategies") == ["0", "1"]
    assert {r["state"] for r in rows} == {"Success"}
    assert "Success" in browser["run"]["header"]


def test_log_pages_tell_what_happened(browser: dict, ui_run: dict) -> None:
    run_date = ui_run["run_after"][:10]
    ingest_log, score_log = browser["logs"]
    lines = "\n".join(ingest_log["lines"])
    assert f"step ingest_candles for {run_date} started" in lines
    for symbol in E2E_CONF["symbols"]:
        assert f"ingest {symbol} 1H:" in lines
    assert "step ingest_candles succeeded" in lines
    # ... and the log of a mapped scoring chunk, reached through its map index.
    assert score_log["map_index"] == 1
    assert "step score_strategies[1] succeeded" in "\n".join(score_log["lines"])


def test_trigger_form_shows_every_param_with_description_and_default(local_airflow: AirflowServer,
                                                                      browser: dict) -> None:
    fields = browser["trigger_form"]["fields"]
    details = local_airflow.api("GET", f"/dags/{DAG_ID}/details")["params"]
    assert set(fields) == set(details)
    for name, field in fields.items():
        schema = details[name].get("schema") or {}
        if "const" in schema:  # fixed by the DAG file, not a knob
            continue
        assert field["in_form"] and field["visible"], name
        assert field["description_shown"], f"{name}: description {field['description']!r} not shown"
        default = field["default"]
        if default is None:  # an optional param without a value: an empty field
            assert field["shown"] in ("", None), name
        elif isinstance(default, bool):
            assert field["shown"] is default, name
        elif isinstance(default, list):
            assert field["shown"].split("\n") == default, name
        elif isinstance(default, (int, float)):
            assert float(field["shown"]) == float(default), name
        else:
            assert field["shown"] == default, name


def test_trigger_form_flags_no_error_with_the_defaults(browser: dict) -> None:
    # The UI marks "Run Parameters" as erroneous when a required field (a schema type
    # without "null") is empty: an optional param needs type=["null", ...].
    assert browser["trigger_form"]["required_but_empty"] == []


def test_trigger_form_submits_a_run_with_the_changed_params(local_airflow: AirflowServer, browser: dict,
                                                            ui_run: dict) -> None:
    form = browser["trigger_form"]
    assert form["submit_enabled"], (f"the Trigger button stays disabled with the defaults; required but empty: "
                                    f"{form['required_but_empty']}")
    assert form["submitted"] == FORM_SUBMIT
    runs = [r for r in local_airflow.dag_runs() if r["dag_run_id"] != ui_run["dag_run_id"]]
    assert len(runs) == 1, runs
    form_run = runs[0]
    assert form_run["run_type"] == "manual"
    assert form_run["conf"]["n_designs"] == FORM_SUBMIT["n_designs"]
    assert form_run["conf"]["history_days"] == FORM_SUBMIT["history_days"]
    assert form_run["conf"]["symbols"] == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]  # untouched fields keep defaults


def test_report_page_has_its_sections(browser: dict, ui_run: dict) -> None:
    run_date = ui_run["run_after"][:10]
    rep = browser["report"]
    assert rep["headings"][0] == f"BloFin research report \u2014 {run_date}"
    for section in REPORT_SECTIONS:
        assert section in rep["headings"], f"report section {section!r} missing: {rep['headings']}"
    assert "SYNTHETIC" in rep["text"]


def test_screenshots_are_saved(browser: dict) -> None:
    shots = [browser[p]["screenshot"] for p in ("grid", "run", "trigger_form", "report")]
    shots += [log["screenshot"] for log in browser["logs"]]
    assert len(shots) == 6
    for shot in shots:
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
