"""The real DAG run by `airflow dags test` (and one task by `airflow tasks test`) on a
throwaway Airflow home: offline on the embedded default, and online against the local
fake Anthropic server: the daily budget stop, batch mode (the LLM tasks deferred to the
provider's batch trigger), and an API outage that fails the run after the report."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.anthropic_server import FakeAnthropicServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = ROOT / ".venv" / "bin" / "airflow"
SMALL = {"symbols": ["BTC-USDT", "ETH-USDT"], "history_days": 120, "score_window_days": 60,
         "wf_train_days": 30, "wf_folds": 4, "n_designs": 2,
         "n_tunes": 1, "ml_enabled": False}
TABLES = ("candles", "strategies", "strategy_backtest_results", "daily_reports", "ranking_history",
          "knowledge_base", "pipeline_runs", "llm_usage")


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    workspace = tmp_path_factory.mktemp("workspace")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "BLOFIN_WORKSPACE": str(workspace),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
        "AIRFLOW_CONN_BLOFIN_DB": json.dumps({"conn_type": "sqlite",
                                              "host": str(workspace / "data" / "blofin_monitor.db")}),
    })
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run([str(AIRFLOW), "pools", "set", "anthropic_api", "3", "Claude API"], env=env, check=True,
                   capture_output=True, timeout=300)
    return env, workspace


def airflow(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout)


def db(workspace: Path) -> sqlite3.Connection:
    con = sqlite3.connect(workspace / "data" / "blofin_monitor.db")
    con.row_factory = sqlite3.Row
    return con


def counts(workspace: Path) -> dict[str, int]:
    with db(workspace) as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_tasks_test_runs_one_step(airflow_env):
    env, workspace = airflow_env
    r = airflow(env, "tasks", "test", "blofin_daily", "ingest_candles", "2026-03-01")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "SYNTHETIC sample market" in r.stdout + r.stderr
    with db(workspace) as con:
        symbols = {row[0] for row in con.execute("SELECT DISTINCT symbol FROM candles")}
    assert symbols == {"BTC-USDT", "ETH-USDT", "SOL-USDT"}


def test_dag_offline_end_to_end_and_same_date_twice(airflow_env):
    env, workspace = airflow_env
    conf = json.dumps(SMALL)
    r = airflow(env, "dags", "test", "blofin_daily", "2026-03-02", "-c", conf)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    first = counts(workspace)
    with db(workspace) as con:
        steps = dict(con.execute("SELECT step, status FROM pipeline_runs WHERE run_date = '2026-03-02'").fetchall())
        designed = con.execute("SELECT COUNT(*) FROM strategies WHERE origin = 'designer'").fetchone()[0]
        review = json.loads(con.execute("SELECT ai_review FROM daily_reports WHERE run_date = '2026-03-02'")
                            .fetchone()[0])
    # 12 step-log rows: scoring in 1 chunk (14 x 2 symbols x 1,440 bars < score_chunk_work), ML disabled:
    # the panel task finds no group to map over
    assert set(steps.values()) == {"success"} and len(steps) == 12, steps
    assert {"plan_scoring", "score_strategies"} <= set(steps)
    assert "train_ml_group" not in " ".join(steps)
    assert designed == 2
    assert review["mode"] == "rule-based"
    assert first["llm_usage"] == 0
    assert (workspace / "data" / "reports" / "2026-03-02.html").exists()
    r = airflow(env, "dags", "test", "blofin_daily", "2026-03-02", "-c", conf)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert counts(workspace) == first


def test_a_bad_parameter_fails_every_task_at_once_without_retries(airflow_env):
    """Issue 13, problem 4: a bad run configuration (here a training span longer than the
    scored window; it was score_window_days above history_days) used to fail in the first
    task, be retried twice, and fail the four all_done tasks three times each (12 minutes).
    Now every task that runs fails on its first try, before touching the data database."""
    env, workspace = airflow_env
    bad = json.dumps({"history_days": 400, "score_window_days": 60, "wf_train_days": 90})
    started = time.monotonic()
    r = airflow(env, "dags", "test", "blofin_daily", "2026-03-09", "-c", bad)
    elapsed = time.monotonic() - started
    out = r.stdout + r.stderr
    assert r.returncode != 0
    # ingest_candles, then the all_done tasks: backtest_candidates, rank_and_update, generate_report, ai_review,
    # check_run
    assert out.count("AirflowFailException: invalid run configuration: wf_train_days (90) must be shorter") == 6
    assert "new_state=up_for_retry" not in out and out.count("new_state=failed") == 6
    assert elapsed < 180, f"took {elapsed:.0f} s to fail"
    if (workspace / "data" / "blofin_monitor.db").exists():  # made by an earlier test of this module, or not
        with db(workspace) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "pipeline_runs" in tables:
                assert con.execute("SELECT COUNT(*) FROM pipeline_runs WHERE run_date = '2026-03-09'").fetchone()[0] == 0
    print(f"\nbad parameter: airflow dags test failed in {elapsed:.1f} s, every task on its first try")


def online_env(env: dict, server: FakeAnthropicServer, **extra) -> dict:
    return dict(env, AIRFLOW_CONN_ANTHROPIC_DEFAULT=json.dumps({
        "conn_type": "anthropic", "password": "sk-ant-test-SECRET-KEY", "host": server.base_url,
        "extra": {"anthropic_client_kwargs": {"max_retries": 2, "timeout": 60}, **extra}}))


def test_dag_online_through_the_hook_then_stops_at_the_budget(airflow_env):
    env, workspace = airflow_env
    with FakeAnthropicServer(auto=True) as server:
        online = online_env(env, server)
        r = airflow(online, "dags", "test", "blofin_daily", "2026-03-03", "-c", json.dumps(SMALL))
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        assert "sk-ant-test-SECRET-KEY" not in r.stdout + r.stderr
        with db(workspace) as con:
            usage = con.execute("SELECT step, model, input_tokens, output_tokens, usd FROM llm_usage "
                                "WHERE run_date = '2026-03-03'").fetchall()
            review = json.loads(con.execute("SELECT ai_review FROM daily_reports WHERE run_date = '2026-03-03'")
                                .fetchone()[0])
            designed = con.execute("SELECT COUNT(*) FROM knowledge_base WHERE run_date = '2026-03-03' "
                                   "AND kind = 'designed' AND detail LIKE '%\"mode\": \"llm\"%'").fetchone()[0]
        steps_called = {u["step"] for u in usage}
        assert {"design", "tune", "review"} <= steps_called
        assert all(u["usd"] > 0 and u["input_tokens"] > 0 for u in usage)
        assert {u["model"] for u in usage} == {"claude-opus-5-5"}
        assert review["mode"] == "llm"
        assert designed >= 1
        spent = sum(u["usd"] for u in usage)
        print(f"\nsimulated online day: {len(usage)} calls, "
              f"{sum(u['input_tokens'] for u in usage)} in / {sum(u['output_tokens'] for u in usage)} out tokens, "
              f"${spent:.4f}")

        # A budget below what one call costs: every LLM step stops cleanly and says so.
        n_requests = len(server.requests)
        tight = dict(SMALL, llm_budget_usd=0.0)
        r = airflow(online, "dags", "test", "blofin_daily", "2026-03-04", "-c", json.dumps(tight))
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        assert len(server.requests) == n_requests  # not one request sent
    with db(workspace) as con:
        summaries = {row[0]: json.loads(row[1]) for row in con.execute(
            "SELECT step, summary FROM pipeline_runs WHERE run_date = '2026-03-04'")}
        review = json.loads(con.execute("SELECT ai_review FROM daily_reports WHERE run_date = '2026-03-04'")
                            .fetchone()[0])
        statuses = dict(con.execute("SELECT step, status FROM pipeline_runs WHERE run_date = '2026-03-04'"
                                    ).fetchall())
    assert "budget" in summaries["design_strategies"]["stopped"]
    assert "budget" in summaries["tune_strategies"]["stopped"]
    assert statuses["design_strategies"] == statuses["tune_strategies"] == "stopped"  # not "success"
    assert review["mode"] == "rule-based" and review["fallback_reason"].startswith("LLM budget spent")


def test_dag_batch_mode_defers_to_the_batch_trigger_at_half_price(airflow_env):
    env, workspace = airflow_env
    with FakeAnthropicServer(schema=True, seed=3, batch_delay_s=1.0) as server:
        online = online_env(env, server, batch={"timeout_s": 120, "poll_s": 0.5})
        conf = dict(SMALL, llm_batch=True)
        r = airflow(online, "dags", "test", "blofin_daily", "2026-03-05", "-c", json.dumps(conf))
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
        batches = server.batches.batches
    assert "running trigger in line" in r.stdout + r.stderr  # the tasks deferred, the trigger polled
    assert len(batches) == 2 and all(b.status == "ended" for b in batches)
    with db(workspace) as con:
        usage = con.execute("SELECT step, mode, status, request_id, usd FROM llm_usage "
                            "WHERE run_date = '2026-03-05' ORDER BY created_at").fetchall()
        statuses = dict(con.execute("SELECT step, status FROM pipeline_runs WHERE run_date = '2026-03-05'"
                                    ).fetchall())
    first = {u["step"]: u for u in usage if u["mode"] == "batch"}
    assert set(first) == {"design", "tune"} and {u["request_id"] for u in first.values()} == {b.id for b in batches}
    assert all(u["status"] in ("ok", "invalid") and u["usd"] > 0 for u in first.values())
    assert statuses["design_strategies"] == statuses["tune_strategies"] == statuses["check_run"] == "success"


# An Airflow cluster policy (read from $AIRFLOW_HOME/config) shortens the retry delay of
# this run only: the DAG's retries still happen, without 30 s + 60 s of waiting.
SHORT_RETRY_POLICY = """from datetime import timedelta


def task_policy(task):
    task.retry_delay = timedelta(seconds=1)
    task.max_retry_delay = timedelta(seconds=2)
"""


def test_dag_with_the_api_down_reviews_by_rule_reports_and_fails_the_run(airflow_env):
    env, workspace = airflow_env
    policy = Path(env["AIRFLOW_HOME"]) / "config" / "airflow_local_settings.py"
    policy.parent.mkdir(exist_ok=True)
    policy.write_text(SHORT_RETRY_POLICY)
    try:
        with FakeAnthropicServer(schema=True, down=True) as server:
            conf = dict(SMALL, n_tunes=1)
            r = airflow(online_env(env, server), "dags", "test", "blofin_daily", "2026-03-06", "-c", json.dumps(conf))
    finally:
        policy.unlink()
    assert r.returncode == 1  # the run is failed ...
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as meta:
        tries = dict(meta.execute("SELECT ti.task_id, ti.try_number FROM task_instance ti JOIN dag_run r "
                                  "ON ti.dag_id = r.dag_id AND ti.run_id = r.run_id "
                                  "WHERE r.logical_date LIKE '2026-03-06%'").fetchall())
    assert tries["research.design_strategies"] == tries["research.tune_strategies"] == 3, tries  # two retries
    with db(workspace) as con:
        statuses = dict(con.execute("SELECT step, status FROM pipeline_runs WHERE run_date = '2026-03-06'"
                                    ).fetchall())
        report = json.loads(con.execute("SELECT report FROM daily_reports WHERE run_date = '2026-03-06'")
                            .fetchone()[0])
    # ... by check_run, after ranking, the report and the review ran
    assert statuses["design_strategies"] == statuses["tune_strategies"] == statuses["check_run"] == "failed"
    assert statuses["rank_and_update"] == statuses["generate_report"] == statuses["ai_review"] == "success"
    assert report["ai_review"]["fallback_reason"].startswith("LLM API unavailable")
    assert report["leaderboard"] and (workspace / "data" / "reports" / "2026-03-06.html").exists()


def test_dag_trains_ml_as_mapped_symbol_groups_and_reduces(airflow_env):
    """Five symbols: the panel task's work list gives two groups (3 + 2: at least two groups,
    sizes balanced), each a mapped task; the reduce scores the best ensemble on all five."""
    env, workspace = airflow_env
    symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "S03-USDT", "S04-USDT"]
    conf = json.dumps({**SMALL, "symbols": symbols, "n_designs": 0, "n_tunes": 0, "ml_enabled": True})
    r = airflow(env, "dags", "test", "blofin_daily", "2026-03-09", "-c", conf)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    with db(workspace) as con:
        steps = dict(con.execute("SELECT step, status FROM pipeline_runs WHERE run_date = '2026-03-09'").fetchall())
        ml_rows = con.execute("SELECT symbol FROM strategy_backtest_results WHERE run_date = '2026-03-09'"
                              " AND phase = 'ml'").fetchall()
        model_symbols = {row[0] for row in con.execute(
            "SELECT DISTINCT symbol FROM ml_model_results WHERE run_date = '2026-03-09'")}
    assert {k: v for k, v in steps.items() if "ml" in k} == {
        "ml_market_panel": "success", "train_ml_group[0]": "success", "train_ml_group[1]": "success",
        "train_ml_models": "success"}
    assert model_symbols == set(symbols)
    assert sorted(row[0] for row in ml_rows) == sorted(symbols)
