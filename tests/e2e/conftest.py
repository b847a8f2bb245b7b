"""End-to-end fixtures: a real Airflow 3 started by scripts/airflow-up.sh on a throwaway
AIRFLOW_HOME and BLOFIN_WORKSPACE, driven through its REST API, stopped by
scripts/airflow-down.sh whatever happens.

Each server gets a free port from the OS and its own session; the scheduler does not
create scheduled runs (`use_job_schedule=False`), so only the runs a test asks for exist.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "blofin_daily"
AIRFLOW_BIN = ROOT / ".venv" / "bin" / "airflow"

# A small run of the real DAG: synthetic market, offline LLM steps, short windows.
E2E_CONF: dict[str, Any] = {
    "symbols": ["BTC-USDT", "ETH-USDT"],
    "history_days": 120,
    "score_window_days": 45, "wf_train_days": 22, "wf_folds": 4,
    "n_designs": 1,
    "n_tunes": 1,
    "llm_mode": "offline",
    # 14 built-ins x 2 symbols x 1,080 bars = 30,240 evaluations: two mapped scoring chunks.
    "score_chunk_work": 20_000,
}
START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 900
STOP_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(home: Path, workspace: Path) -> dict[str, str]:
    """The environment of a throwaway Airflow: nothing inherited that points elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k not in ("AIRFLOW_HOME",)}
    env.update({
        "AIRFLOW_HOME": str(home),
        "BLOFIN_WORKSPACE": str(workspace),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "BLOFIN_ADMIN_PASSWORD": "e2e-admin",
    })
    return env


@dataclass
class AirflowServer:
    """One Airflow started with scripts/airflow-up.sh, driven through /api/v2."""

    home: Path
    workspace: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    workers: int = 0
    sid: int | None = None
    _token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> str:
        return self.env["BLOFIN_ADMIN_PASSWORD"]

    @property
    def data_db(self) -> Path:
        return self.workspace / "data" / "blofin_monitor.db"

    @property
    def service_logs(self) -> Path:
        return self.home / "logs" / "services"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        cmd = [str(ROOT / "scripts" / "airflow-up.sh"), "--port", str(self.port), "--timeout", str(START_TIMEOUT_S)]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        proc = subprocess.run(cmd, env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S + 300)
        pidfile = self.home / "airflow-up.pid"
        if pidfile.exists():
            self.sid = int(pidfile.read_text().strip())
        if proc.returncode != 0:
            raise RuntimeError(f"airflow-up.sh failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        self.wait_dag_parsed()

    def stop(self) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / "scripts" / "airflow-down.sh")], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=STOP_TIMEOUT_S)

    def processes_left(self) -> list[int]:
        if self.sid is None:
            return []
        out = subprocess.run(["pgrep", "-s", str(self.sid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def logs_tail(self, lines: int = 40) -> str:
        parts = []
        for log in sorted(self.service_logs.glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    # -- REST API ------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            resp = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password},
                              timeout=60)
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = httpx.request(method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                             timeout=60, **kwargs)
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:1000]}")
        return resp.json() if resp.content else None

    def wait_dag_parsed(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            resp = httpx.get(f"{self.url}/api/v2/dags/{DAG_ID}", headers={"Authorization": f"Bearer {self.token()}"},
                             timeout=60)
            if resp.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{DAG_ID} not parsed after {timeout:.0f}s\n{self.logs_tail()}")
            time.sleep(2)

    def unpause(self) -> None:
        assert self.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})["is_paused"] is False

    def trigger(self, conf: dict[str, Any]) -> dict:
        return self.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})

    def dag_runs(self) -> list[dict]:
        return self.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, run_id: str) -> list[dict]:
        """Every task instance of the run (mapped ones included: paged 100 at a time)."""
        tis: list[dict] = []
        while True:
            page = self.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
                            params={"limit": 100, "offset": len(tis), "order_by": "id"})
            tis += page["task_instances"]
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis

    def wait_runs(self, run_ids: list[str], timeout: float = RUN_TIMEOUT_S) -> dict[str, str]:
        """Poll until every run is finished; their final states (failures are shown in full)."""
        deadline = time.monotonic() + timeout
        while True:
            states = {r["dag_run_id"]: r["state"] for r in self.dag_runs() if r["dag_run_id"] in run_ids}
            if len(states) == len(run_ids) and all(s in ("success", "failed") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                detail = {rid: [(t["task_id"], t["map_index"], t["state"]) for t in self.task_instances(rid)]
                          for rid in run_ids}
                raise AssertionError(f"runs not finished after {timeout:.0f}s: {states}\n{detail}\n{self.logs_tail()}")
            time.sleep(5)

    def describe_failures(self, run_id: str) -> str:
        bad = [t for t in self.task_instances(run_id) if t["state"] != "success"]
        return "\n".join(f"{t['task_id']}[{t['map_index']}]: {t['state']} (try {t['try_number']})" for t in bad)

    def task_log(self, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        resp = httpx.get(f"{self.url}/api/v2{path}", params={"map_index": map_index, "full_content": True},
                         headers={"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}, timeout=60)
        resp.raise_for_status()
        content = resp.json().get("content")
        if isinstance(content, list):
            return "\n".join(c.get("event", "") if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def airflow(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """An `airflow` CLI command in the services' environment (scripts/env.sh)."""
        script = f'. "{ROOT}/scripts/env.sh" && exec airflow "$@"'
        return subprocess.run(["bash", "-c", script, "airflow", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def require_airflow() -> None:
    if not AIRFLOW_BIN.exists():
        pytest.skip(f"no Airflow in {AIRFLOW_BIN}: run scripts/setup.sh first")


@contextmanager
def throwaway_dir(prefix: str) -> Iterator[Path]:
    """A folder of our own (not pytest's rotating basetemp, which other runs may prune)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield base
    finally:
        if os.environ.get("BLOFIN_E2E_KEEP"):  # for a post-mortem of the logs
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running(server: AirflowServer) -> Iterator[AirflowServer]:
    """Start the server; stop it whatever happens (and say so if anything was left)."""
    try:
        server.start()
        yield server
    finally:
        stopped = server.stop()
        left = server.processes_left()
        if stopped.returncode != 0 or left:
            print(stopped.stdout, stopped.stderr, f"processes left: {left}")


@pytest.fixture(scope="module")
def local_airflow() -> Iterator[AirflowServer]:
    """A LocalExecutor Airflow on SQLite with its own home, workspace and data database."""
    require_airflow()
    with throwaway_dir("blofin-e2e-") as base:
        home, workspace = base / "airflow_home", base / "workspace"
        with running(AirflowServer(home=home, workspace=workspace, env=base_env(home, workspace))) as server:
            yield server


KEEP_SCREENSHOT_RUNS = 5


def screenshots_dir(name: str) -> Path:
    """A new folder for this run's screenshots under workspace/screenshots/<name>/ (git-ignored;
    $BLOFIN_SCREENSHOTS moves the root), `latest` linking to it. Two test runs of one checkout
    at once each keep their own files; only run folders older than the newest few are removed."""
    root = Path(os.environ.get("BLOFIN_SCREENSHOTS", ROOT / "workspace" / "screenshots")) / name
    root.mkdir(parents=True, exist_ok=True)
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}"
    out = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=root))
    for stale in root.iterdir():  # the files of the layout before run folders
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    runs = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)
    for old in runs[:-KEEP_SCREENSHOT_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    link = root / f".latest-{os.getpid()}"
    link.symlink_to(out.name)
    os.replace(link, root / "latest")
    return out


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
