from __future__ import annotations

import sys
import threading

import pytest

from blofin_pipeline.exceptions import ConfigError, StoreError
from blofin_pipeline.store.connection import SQL_DIR, Store, open_store

SPEC_TABLES = ("strategy_backtest_results", "ml_model_results", "ml_ensembles", "daily_reports", "ranking_history")
OWN_TABLES = ("strategies", "candles", "knowledge_base", "llm_usage", "pipeline_runs", "candle_gaps", "research_trials",
              "strategy_status_history")


def test_schema_has_every_table_and_is_versioned(db_url):
    with open_store(db_url) as store:
        version = store.schema_version()
        assert version == max(int(p.name[:3]) for p in (SQL_DIR / "migrations").glob("*.sql"))
        counts = store.table_counts(SPEC_TABLES + OWN_TABLES)
        assert set(counts) == set(SPEC_TABLES + OWN_TABLES)
        # Idempotent: migrating again applies nothing and keeps the version.
        assert store.migrate() == version
        assert store.scalar("SELECT COUNT(*) AS n FROM schema_version") == len(
            list((SQL_DIR / "migrations").glob("*.sql")))  # each applied once


def test_migration_numbers_are_unique():
    """Two files with one number (branches merged) would leave one of them never applied."""
    numbers = [p.name[:3] for p in sorted((SQL_DIR / "migrations").glob("*.sql"))]
    assert len(numbers) == len(set(numbers)), numbers


def test_existing_database_upgrades_in_place(db_url, tmp_path, monkeypatch):
    with open_store(db_url) as store:
        store.upsert("knowledge_base", [{"run_date": "2026-01-01", "kind": "note", "subject": "x",
                                         "detail": {"a": 1}, "created_at": "t"}], key=("run_date", "kind", "subject"))
    extra = tmp_path / "sql"
    (extra / "migrations").mkdir(parents=True)
    for path in (SQL_DIR / "migrations").glob("*.sql"):
        (extra / "migrations" / path.name).write_text(path.read_text())
    (extra / "migrations" / "999_test_upgrade.sql").write_text(
        "-- a later version adds a column\nALTER TABLE knowledge_base ADD COLUMN tag TEXT;\n")
    monkeypatch.setattr("blofin_pipeline.store.connection.SQL_DIR", extra)
    with open_store(db_url) as store:
        assert store.schema_version() == 999
        rows = store.query("SELECT subject, tag FROM knowledge_base")
        assert rows == [{"subject": "x", "tag": None}]  # data kept, column added


def test_upsert_is_idempotent_and_updates(db_url):
    row = {"run_date": "2026-11-20", "step": "ingest_candles", "status": "running", "started_at": "a",
           "ended_at": None, "duration_s": None, "error": None, "summary": None}
    with open_store(db_url) as store:
        store.upsert("pipeline_runs", [row], key=("run_date", "step"))
        store.upsert("pipeline_runs", [dict(row, status="success", duration_s=1.5)], key=("run_date", "step"))
        rows = store.query("SELECT status, duration_s FROM pipeline_runs")
    assert rows == [{"status": "success", "duration_s": 1.5}]


def test_nan_becomes_null_and_json_is_text(db_url):
    with open_store(db_url) as store:
        store.upsert("research_trials", [{"run_date": "d", "item": "x", "n_series": 3}], key=("run_date", "item"))
        store.upsert("knowledge_base", [{"run_date": "d", "kind": "note", "subject": "s",
                                         "detail": {"sharpe": float("nan"), "ok": [1, 2]}, "created_at": "t"}],
                     key=("run_date", "kind", "subject"))
        detail = store.scalar("SELECT detail FROM knowledge_base")
    assert detail == '{"sharpe": null, "ok": [1, 2]}'


def test_bad_sql_names_the_statement(db_url):
    with open_store(db_url) as store, pytest.raises(StoreError, match="no_such_table"):
        store.query("SELECT * FROM no_such_table")
    with open_store(db_url) as store, pytest.raises(StoreError, match="invalid SQL identifier"):
        store.upsert("candles; DROP TABLE x", [{"a": 1}], key=("a",))


def test_failed_transaction_rolls_back(db_url):
    with open_store(db_url) as store:
        with pytest.raises(RuntimeError), store.transaction():
            store.execute("INSERT INTO research_trials (run_date, item, n_series) VALUES (:d, :i, :n)",
                          {"d": "d", "i": "x", "n": 1})
            raise RuntimeError("boom")
        assert store.scalar("SELECT COUNT(*) AS n FROM research_trials") == 0


def test_unknown_url_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="mysql"):
        Store("mysql://u:secret@h/db")


def test_url_password_is_redacted_in_errors():
    with pytest.raises(ConfigError) as info:
        Store("mysql://user:hunter2@h/db")
    assert "hunter2" not in str(info.value)


def test_sqlite_uses_wal_and_parallel_writers_never_lock(sqlite_url):
    with open_store(sqlite_url) as store:
        assert store.scalar("PRAGMA journal_mode") == "wal"
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            with open_store(sqlite_url) as store:
                for i in range(60):
                    store.upsert("research_trials", [{"run_date": f"w{worker}", "item": f"i{i}", "n_series": i}],
                                 key=("run_date", "item"))
                    store.query("SELECT COUNT(*) AS n FROM research_trials")
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_store(sqlite_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM research_trials") == 6 * 60


def test_library_does_not_import_airflow():
    import subprocess

    code = ("import sys, blofin_pipeline, blofin_pipeline.steps, blofin_pipeline.store, blofin_pipeline.market.ingest, "
            "blofin_pipeline.__main__; assert 'airflow' not in sys.modules, 'airflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_status_history_of_an_existing_database_is_told_from_its_rows(db_url):
    """Migration 005 on a version-1 database: each version's statuses from what was kept
    (registration, the checks, ranking decisions, other archivals)."""
    from blofin_pipeline.store.connection import Store, _split_statements
    from blofin_pipeline.strategies.status import statuses_at

    with Store(db_url) as store:
        store.schema_version()
        for statement in _split_statements((SQL_DIR / "migrations" / "001_initial.sql").read_text()):
            store.execute(statement)
        store.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (1, '001_initial', 't')")
        for name, origin, status, created, archived_at in (
                ("ema", "builtin", "active", "2026-01-01", None), ("old", "builtin", "archived", "2026-01-01", None),
                ("d1", "designer", "active", "2026-01-02", None),
                ("d2", "designer", "archived", "2026-01-02", "2026-01-02T00:05:00+00:00"),
                ("gone", "builtin", "archived", "2026-01-01", "2026-01-05T09:00:00+00:00")):
            store.upsert("strategies", [{"name": name, "version": 1, "category": "trend", "params": "{}",
                                         "param_space": "{}", "code": "#", "code_hash": name, "status": status,
                                         "origin": origin, "parent": None, "rationale": None, "created_at": "t",
                                         "created_run_date": created, "archived_at": archived_at,
                                         "archive_reason": "why" if status == "archived" else None}],
                         key=("name", "version"))
        store.upsert("ranking_history", [
            {"run_date": d, "item_type": "strategy", "item": item, "metric": "score", "value": 0.0, "rank": 1,
             "decision": decision, "reason": "rank", "created_at": "t"}
            for d, item, decision in (("2026-01-02", "d1@1", "kept"), ("2026-01-03", "old@1", "archived"))],
            key=("run_date", "item_type", "item"))
        store.migrate()

        def seen(day: str) -> dict[str, str]:
            return {r.name: r.status for r in statuses_at(store, day)}

        assert seen("2026-01-02") == {"ema": "active", "old": "active", "gone": "active"}
        assert seen("2026-01-03") == {"ema": "active", "old": "active", "gone": "active", "d1": "active",
                                      "d2": "archived"}
        assert seen("2026-01-04") == {**seen("2026-01-03"), "old": "archived"}
        assert seen("2026-01-06") == {**seen("2026-01-04"), "gone": "archived"}
        assert store.scalar("SELECT COUNT(*) AS n FROM pipeline_runs WHERE run_id IS NOT NULL") == 0
