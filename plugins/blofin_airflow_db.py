"""Connect arguments for the local server's SQLite metadata database (set by scripts/env.sh).

SQLite has one writer at a time: the scheduler, the DAG processor, the API server and a CLI
command (`airflow backfill create`) take turns, and Python's sqlite3 gives up after waiting
5 s, which a busy 2-core machine exceeded twice in CI ("database is locked"). 60 s of
waiting instead. Not used with PostgreSQL (docker-compose.yaml, the Celery tests).
"""
SQLITE_CONNECT_ARGS = {"timeout": 60}
