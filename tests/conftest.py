"""Shared fixtures: a data database on SQLite and, when reachable, on PostgreSQL."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

# Airflow reads its configuration on first import: keep it inside the project, as
# scripts/env.sh does, when the tests are run without sourcing it.
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "airflow_home"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

PG_URL = os.environ.get("BLOFIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as err:  # the reason is shown in the skip message
        return f"{type(err).__name__}: {err}".strip()


_PG_PROBLEM = _pg_reachable()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL schema per test (dropped afterwards), as a connection URL."""
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL at {PG_URL} not reachable ({_PG_PROBLEM}): PostgreSQL store tests skipped")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """The same test on both databases the store supports."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return request.getfixturevalue(fixture)


CHROMIUM = "/usr/bin/chromium"


CHROMIUM_LOCK = Path("/tmp/blofin-chromium-install.lock")


def _no_browser(why: str) -> None:
    """Skip, saying why; under CI (CI set) a missing browser fails: a skipped UI check must not pass for one."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing; playwright drives it. Skips
    (fails under CI), saying why, only when it cannot be found nor installed. Each xdist
    worker asks: a file lock makes the second wait for the first's install (two apt-gets at
    once fail on dpkg's lock, which once skipped the browser tests of a fresh machine)."""
    import fcntl

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _no_browser("python package playwright is not installed (pip install playwright==1.65.2; "
                    "no browser download needed: Debian chromium is used)")
    with open(CHROMIUM_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(CHROMIUM):
            apt = shutil.which("apt-get")
            if apt is None or os.geteuid() != 0:
                _no_browser("chromium is not installed and apt-get is not usable here (install Debian's chromium)")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, timeout=600)
            done = subprocess.run([apt, "install", "-y", "-qq", "chromium"], env=env, capture_output=True,
                                  text=True, timeout=900)
            if done.returncode != 0 or not os.path.exists(CHROMIUM):
                _no_browser(f"chromium could not be installed with apt-get: {done.stderr[-500:]}")
    return CHROMIUM
