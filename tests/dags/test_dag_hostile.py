"""The hostile corpus through the real DAG: files registered with `add-strategy`, the rest
returned by the (fake) Anthropic API as the day's designs, then `airflow dags test` with a
canary API key in Airflow's Anthropic connection.

Nothing may do harm (no marker file, no connection to the listener, no survivor, the
victim alive), no secret or stolen text may reach the database, the task logs or the
report, and no file the static check rejects may end up active.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.dags.test_dag_run import ROOT, SMALL, airflow, airflow_env, db  # noqa: F401 (fixture)
from tests.strategies.test_hostile import HOSTILE, headers, traps  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
DATE = "2026-03-06"


def test_hostile_files_added_by_users_do_no_harm_in_a_dag_run(airflow_env, traps, tmp_path):  # noqa: F811
    env, workspace = airflow_env
    db_url = f"sqlite:///{workspace / 'data' / 'blofin_monitor.db'}"
    added, designed = HOSTILE[: len(HOSTILE) // 2], HOSTILE[len(HOSTILE) // 2:]
    outputs = []
    with FakeAnthropicServer(auto=True) as server:
        env = dict(env, AIRFLOW_CONN_ANTHROPIC_DEFAULT=json.dumps(
            {"conn_type": "anthropic", "password": traps.canary, "host": server.base_url,
             "extra": {"anthropic_client_kwargs": {"max_retries": 0, "timeout": 60}}}))
        for path in added:
            mine = tmp_path / path.name
            mine.write_text(traps.code(path))
            r = subprocess.run([sys.executable, "-m", "blofin_pipeline", "--db", db_url, "add-strategy", str(mine)],
                               env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
            outputs.append(r.stdout + r.stderr)
        server.push_tool_use("submit_strategies", {"strategies": [
            {"name": path.stem, "category": "trend", "rationale": "covers the trend gap", "code": traps.code(path)}
            for path in designed]})
        conf = dict(SMALL, llm_mode="online", n_designs=len(designed), n_tunes=0)
        r = airflow(env, "dags", "test", "blofin_daily", DATE, "-c", json.dumps(conf))
        outputs.append(r.stdout + r.stderr)
        assert any("submit_strategies" in json.dumps(req.body) for req in server.requests), "no design call was made"
    assert "backtest_candidates" in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    with db(workspace) as con:
        dump = "\n".join(con.iterdump())
        active = {row[0] for row in con.execute(
            "SELECT name FROM strategies WHERE origin IN ('user', 'designer') AND status = 'active'")}
        user = con.execute("SELECT COUNT(*) FROM strategies WHERE origin IN ('user', 'designer')").fetchone()[0]
        from_designs = con.execute("SELECT COUNT(*) FROM strategies WHERE origin = 'designer'").fetchone()[0]
        gated = con.execute("SELECT COUNT(*) FROM knowledge_base WHERE kind IN ('rejected', 'accepted') "
                            "AND run_date = ?", (DATE,)).fetchone()[0]
    assert user >= len(added) - 1, outputs  # registered (one added file may fail to describe itself)
    assert from_designs >= 1, "the hostile designs were not registered"
    assert gated >= user, "the run did not gate the added strategies"
    statically_rejected = {p.stem for p in HOSTILE if headers(p)["expect"] != "accepted"}
    assert not {a for a in active if any(a in stem or stem in a for stem in statically_rejected)}, active
    task_logs = "\n".join(p.read_text(errors="replace")
                          for p in Path(env["AIRFLOW_HOME"]).rglob("*.log") if p.is_file())
    reports = "\n".join(p.read_text(errors="replace") for p in (workspace / "data" / "reports").glob("*"))
    traps.assert_no_harm(dump, reports, task_logs, *outputs)
