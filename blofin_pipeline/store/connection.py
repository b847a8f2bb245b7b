"""Data database access: one small class for SQLite (embedded default) and PostgreSQL.

The SQL lives in ``include/sql``: ``migrations/NNN_*.sql`` build the schema, in order,
each applied once and recorded in ``schema_version``; ``queries/<aggregate>_<what>.sql``
are the named statements the repository modules beside this one run. Parameters are
written ``:name`` in the files and translated for the driver. Inserts go through
:meth:`Store.upsert` (``INSERT ... ON CONFLICT DO UPDATE``, which both databases speak),
so running the same logical date twice never duplicates rows.

SQLite runs in WAL mode with a busy timeout and every write is its own short
transaction, so the parallel research tasks do not fail with "database is locked".
"""
from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from blofin_pipeline.exceptions import ConfigError, StoreError

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
BUSY_TIMEOUT_MS = 60_000
_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MIGRATION_LOCK = threading.Lock()


def utc_now(timespec: str = "seconds") -> str:
    """Now as ISO-8601 UTC text, the store's time format (`timespec`: "microseconds" to order rows)."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


@lru_cache(maxsize=None)
def load_sql(name: str) -> str:
    """Text of ``include/sql/queries/<name>.sql``."""
    path = SQL_DIR / "queries" / f"{name}.sql"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise StoreError(f"no SQL query named {name!r} (looked for {path})") from None


def _split_statements(script: str) -> list[str]:
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _clean(value: Any) -> Any:
    """Python value -> DB value: NaN/inf become NULL, dicts/lists become JSON text."""
    kind = type(value)
    if kind is float:  # the common cases first: bulk writes clean millions of values
        return value if math.isfinite(value) else None
    if kind is int or kind is str or value is None:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dict, list, tuple)):
        return to_json(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return _clean(value.item())
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        v = value.item()
        return None if isinstance(v, float) and not math.isfinite(v) else v
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(value: Any) -> str:
    """JSON text with NaN/inf written as null (JSON has no NaN)."""
    return json.dumps(_nan_to_none(value), default=_json_default, allow_nan=False)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


class Store:
    """A connection to the data database. Use as a context manager or call close()."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            path = Path(url[len("sqlite:///"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            self.path: Path | None = path
            try:
                self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as err:
                raise StoreError(f"cannot open SQLite database {path}: {err}") from err
            self._conn.row_factory = sqlite3.Row
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self.path = None
            try:
                import psycopg
                from psycopg.rows import dict_row

                self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
            except Exception as err:  # driver errors carry the host, never a password here
                raise StoreError(f"cannot connect to PostgreSQL data database: {type(err).__name__}: {err}") from err
        else:
            raise ConfigError(f"unsupported database URL scheme in {_redact(url)!r}: use sqlite:/// or postgresql://")
        self._in_tx = False

    # -- plumbing ------------------------------------------------------------------
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _sql(self, sql: str) -> str:
        if self.dialect == "postgresql":
            return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        return sql

    @contextmanager
    def transaction(self, *, lock: bool = True) -> Iterator[None]:
        """One short transaction; SQLite takes the write lock up front (BEGIN IMMEDIATE).

        ``lock=False`` (SQLite: a deferred BEGIN) is for writes to TEMP tables only: they
        live in the connection's own temp database, so other writers are not blocked.
        """
        if self._in_tx:
            yield
            return
        begin = "BEGIN IMMEDIATE" if self.dialect == "sqlite" and lock else "BEGIN"
        self._raw_execute(begin, {})
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._raw_execute("ROLLBACK", {})
            raise
        else:
            self._raw_execute("COMMIT", {})
        finally:
            self._in_tx = False

    def _raw_execute(self, sql: str, params: Mapping[str, Any]) -> Any:
        try:
            cur = self._conn.cursor()
            cur.execute(sql, params)
            return cur
        except Exception as err:
            raise StoreError(f"{self.dialect} statement failed: {err}; SQL: {sql.strip()[:200]}") from err

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement; returns the affected row count."""
        cur = self._raw_execute(self._sql(sql), {k: _clean(v) for k, v in (params or {}).items()})
        return cur.rowcount

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""
        cur = self._raw_execute(self._sql(sql), {k: _clean(v) for k, v in (params or {}).items()})
        return [dict(r) for r in cur.fetchall()]

    def query_columns(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
        """The named query's result as {column: values} (no dict per row: for long numeric reads)."""
        cur = self._raw_execute(self._sql(load_sql(name)), {k: _clean(v) for k, v in (params or {}).items()})
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if rows and isinstance(rows[0], Mapping):  # PostgreSQL's dict rows
            rows = [tuple(r[c] for c in names) for r in rows]
        values = list(zip(*rows)) if rows else [() for _ in names]
        return {c: list(v) for c, v in zip(names, values, strict=True)}

    def query_named(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of the query in ``include/sql/queries/<name>.sql``."""
        return self.query(load_sql(name), params)

    def execute_named(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        """Run the statement in ``include/sql/queries/<name>.sql``; returns the affected row count."""
        return self.execute(load_sql(name), params)

    def execute_many_named(self, name: str, rows: Iterable[Mapping[str, Any]], *, lock: bool = True) -> None:
        """Run the named statement once per row (rows streamed, not held), in one transaction."""
        sql = self._sql(load_sql(name))
        with self.transaction(lock=lock):
            try:
                self._conn.cursor().executemany(sql, ({k: _clean(v) for k, v in row.items()} for row in rows))
            except Exception as err:
                raise StoreError(f"{self.dialect} statement {name!r} failed: {err}") from err

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def scalar_named(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """:meth:`scalar` of the query in ``include/sql/queries/<name>.sql``."""
        return self.scalar(load_sql(name), params)

    # -- writes --------------------------------------------------------------------
    def upsert(
        self,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        key: Sequence[str],
        *,
        update: Sequence[str] | None = None,
        db_values: bool = False,
    ) -> int:
        """Insert rows, updating the non-key columns (or ``update``) when the key exists.

        All rows must have the same columns. Returns the number of rows written. With
        ``db_values`` the caller vouches that every value is already a DB value (None, int,
        finite float, str), so they are not cleaned one by one (bulk candle writes).
        """
        rows = list(rows)
        if not rows:
            return 0
        columns = list(rows[0].keys())
        for name in (table, *columns, *key):
            if not _IDENT.match(name):
                raise StoreError(f"invalid SQL identifier {name!r}")
        missing = [k for k in key if k not in columns]
        if missing:
            raise StoreError(f"upsert into {table}: key columns {missing} missing from the rows")
        to_update = [c for c in (update if update is not None else columns) if c not in key]
        placeholders = ", ".join(f":{c}" for c in columns)
        conflict = (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in to_update) if to_update else "DO NOTHING"
        )
        sql = self._sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(key)}) {conflict}"
        )
        params = []
        for row in rows:
            if list(row.keys()) != columns and set(row.keys()) != set(columns):
                raise StoreError(f"upsert into {table}: rows have different columns")
            params.append(row if db_values else {c: _clean(row[c]) for c in columns})
        with self.transaction():
            try:
                self._conn.cursor().executemany(sql, params)
            except Exception as err:
                raise StoreError(f"upsert into {table} failed: {err}") from err
        return len(params)

    # -- schema --------------------------------------------------------------------
    def schema_version(self) -> int:
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return int(self.scalar("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version") or 0)

    def migrate(self) -> int:
        """Apply the migrations not yet applied, in order; returns the schema version.

        Idempotent: safe to call from every task, and from several workers at once
        (PostgreSQL: an advisory lock serialises them; SQLite: BEGIN IMMEDIATE).
        """
        with _MIGRATION_LOCK:
            current = self.schema_version()
            pending = [p for p in sorted((SQL_DIR / "migrations").glob("*.sql")) if int(p.name[:3]) > current]
            if not pending:
                return current
            with self.transaction():
                if self.dialect == "postgresql":
                    self._raw_execute("SELECT pg_advisory_xact_lock(727001)", {})
                current = int(self.scalar("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version") or 0)
                for path in pending:
                    version = int(path.name[:3])
                    if version <= current:
                        continue
                    for statement in _split_statements(path.read_text()):
                        self._raw_execute(statement, {})
                    self._raw_execute(
                        self._sql("INSERT INTO schema_version (version, name, applied_at) VALUES (:v, :n, :t)"),
                        {"v": version, "n": path.stem, "t": utc_now()},
                    )
                    logger.info("data database: applied migration %s", path.name)
                    current = version
            return current

    def table_counts(self, tables: Iterable[str]) -> dict[str, int]:
        out = {}
        for t in tables:
            if not _IDENT.match(t):
                raise StoreError(f"invalid table name {t!r}")
            out[t] = int(self.scalar(f"SELECT COUNT(*) AS n FROM {t}"))
        return out


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the data database and bring its schema up to date."""
    store = Store(url)
    if migrate:
        store.migrate()
    return store
