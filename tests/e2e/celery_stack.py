"""A throwaway CeleryExecutor deployment on this machine, shared by tests/e2e/test_celery.py
and bench/dag_scale.py --celery.

PostgreSQL (127.0.0.1:5432, trust auth, user postgres) holds two fresh databases, Airflow's
metadata and the pipeline's data (connection blofin_db); Redis (127.0.0.1:6379) is the
broker, with a queue unique to the stack; scripts/airflow-up.sh starts the services and N
Celery workers named worker1..N (each reports that name as the task instances' hostname,
see celery_settings.py). Everything is dropped afterwards, whatever happens.
"""
from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import START_TIMEOUT_S, AirflowServer, base_env, running, throwaway_dir

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 14


class StackUnavailable(RuntimeError):
    """PostgreSQL, Redis or the PostgreSQL driver is missing on this machine."""


@dataclass
class CeleryStack:
    server: AirflowServer
    data_db: str
    workers: list[str]


def worker_names(n: int) -> list[str]:
    """The names scripts/airflow-up.sh gives its Celery workers."""
    return [f"worker{i}" for i in range(1, n + 1)]


def postgres_admin():
    """An autocommit connection to the admin database, or StackUnavailable saying why not."""
    try:
        import psycopg
    except ImportError as err:
        raise StackUnavailable(f"psycopg is needed to create the databases: {err}") from None
    try:
        return psycopg.connect(**PG, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as err:
        raise StackUnavailable(f"PostgreSQL does not answer on {PG['host']}:{PG['port']} as {PG['user']}: {err}") from None


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def celery_env(home: Path, workspace: Path, *, meta_db: str, data_db: str, queue: str, concurrency: int) -> dict[str, str]:
    env = base_env(home, workspace)
    meta_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_db}"
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{meta_db}",
        # A queue of our own: other runs on the same Redis never take our tasks.
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.celery_settings.worker_hostname",
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "tests.e2e.celery_settings.CELERY_CONFIG",
        "AIRFLOW_CONN_BLOFIN_DB": json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 5432,
                                              "login": "postgres", "schema": data_db}),
        "BLOFIN_WORKER_CONCURRENCY": str(concurrency),
    })
    return env


@contextmanager
def celery_stack(workers: int, *, concurrency: int = 1, extra_env: dict[str, str] | None = None,
                 prefix: str = "blofin-celery-") -> Iterator[CeleryStack]:
    """Start the deployment (every worker connected to the broker); tear it all down after."""
    if not redis_answers():
        raise StackUnavailable(f"Redis does not answer on {REDIS[0]}:{REDIS[1]}")
    admin = postgres_admin()
    suffix = uuid.uuid4().hex[:10]
    meta_db, data_db, queue = f"af_meta_{suffix}", f"blofin_data_{suffix}", f"e2e_{suffix}"
    names = worker_names(workers)
    try:
        for db in (meta_db, data_db):
            admin.execute(f'CREATE DATABASE "{db}"')
        with throwaway_dir(prefix) as base:
            home, workspace = base / "airflow_home", base / "workspace"
            env = celery_env(home, workspace, meta_db=meta_db, data_db=data_db, queue=queue, concurrency=concurrency)
            env.update(extra_env or {})
            server = AirflowServer(home=home, workspace=workspace, env=env, workers=workers)
            with running(server):
                wait_workers_ready(server, names)
                yield CeleryStack(server=server, data_db=data_db, workers=names)
    finally:
        for db in (meta_db, data_db):
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
        drop_queue(queue)


def drop_queue(queue: str) -> None:
    """Remove our queue's keys (the queue and kombu's bindings of it) from the broker db."""
    import redis

    client = redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB, socket_timeout=10)
    try:
        for key in list(client.scan_iter(match=f"*{queue}*")):
            client.delete(key)
    finally:
        client.close()


def wait_workers_ready(server: AirflowServer, names: list[str], timeout: float = START_TIMEOUT_S) -> None:
    """Every Celery worker connected to the broker (each logs '<name>@<host> ready.')."""
    deadline = time.monotonic() + timeout
    while True:
        ready = [w for w in names if (server.service_logs / f"{w}.log").exists()
                 and f"{w}@" in (text := (server.service_logs / f"{w}.log").read_text(errors="replace"))
                 and " ready." in text]
        if len(ready) == len(names):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Celery workers not ready after {timeout:.0f}s: {ready}\n{server.logs_tail()}")
        time.sleep(2)


def mapped_task_ids(server: AirflowServer, dag_id: str) -> list[str]:
    """The task ids the DAG maps (dynamic task mapping), as the API server reports them."""
    return sorted(t["task_id"] for t in server.api("GET", f"/dags/{dag_id}/tasks")["tasks"] if t.get("is_mapped"))
