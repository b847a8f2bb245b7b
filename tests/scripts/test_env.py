"""scripts/env.sh: the local server's SQLite metadata database waits 60 s for its one writer
(a CLI backfill failed twice in CI with "database is locked" after sqlite3's default 5 s);
a PostgreSQL metadata database gets no SQLite-only connect argument."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _connect_args(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE__")}
    done = subprocess.run(["bash", "-c", f'. "{ROOT}/scripts/env.sh" && '
                           'echo "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS:-}"'],
                          env={**clean, **env}, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_sqlite_metadata_database_waits_for_its_writer():
    assert _connect_args() == "blofin_airflow_db.SQLITE_CONNECT_ARGS"
    assert _connect_args(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:////tmp/a.db") == \
        "blofin_airflow_db.SQLITE_CONNECT_ARGS"
    from blofin_airflow_db import SQLITE_CONNECT_ARGS

    assert SQLITE_CONNECT_ARGS["timeout"] >= 60


def test_postgresql_metadata_database_gets_no_sqlite_argument():
    assert _connect_args(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://u@127.0.0.1/db") == ""
