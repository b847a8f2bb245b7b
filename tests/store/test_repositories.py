"""The repository modules on both databases: the statements behind the domain code."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline.exceptions import StoreError
from blofin_pipeline.store import open_store
from blofin_pipeline.store.knowledge import (
    add_knowledge,
    knowledge_on,
    withdraw_knowledge,
)
from blofin_pipeline.store.registry import (
    items_tried_before,
    record_trials,
    register_version,
    strategy_rows_with_status,
    strategy_version,
    total_trials,
    update_strategy_status,
)
from blofin_pipeline.store.reports import report_row, store_ai_review, upsert_report
from blofin_pipeline.store.runs import scoring_step_rows, upsert_step_row


def _strategy(name: str, status: str = "active", code: str = "") -> dict:
    return {"name": name, "category": "trend", "params": {}, "param_space": {}, "code": f"# {name}{code}",
            "code_hash": f"h-{name}{code}", "status": status, "origin": "user", "parent": None, "rationale": None,
            "created_at": "t", "created_run_date": "2026-01-01", "archived_at": None, "archive_reason": None}


def test_total_trials_counts_each_item_once(db_url):
    with open_store(db_url) as store:
        record_trials(store, "2026-01-01", [("a@1", 7), ("b@1", 7)])
        record_trials(store, "2026-01-02", [("a@1", 7), ("c@1", 3)])
        assert total_trials(store) == 17
        assert total_trials(store, before="2026-01-02") == 14  # c was first tried that day
        assert items_tried_before(store, "2026-01-02") == {"a@1", "b@1"}


def test_versions_count_up_per_name(db_url):
    with open_store(db_url) as store:
        assert register_version(store, _strategy("a"))[0]["version"] == 1
        assert register_version(store, _strategy("a", code="v2"))[0]["version"] == 2
        again, inserted = register_version(store, _strategy("a", code="v2"))
        assert (again["version"], inserted) == (2, False)  # the same code is the same version
        assert register_version(store, _strategy("b", "candidate")) == (strategy_version(store, "b", 1), True)
        assert [(r["name"], r["version"]) for r in strategy_rows_with_status(store, "active")] == [("a", 1), ("a", 2)]
        assert json.loads(strategy_version(store, "b", 1)["params"]) == {}
        assert strategy_version(store, "b", 2) is None


def test_status_update_keeps_the_first_archival_time_and_clears_it_on_reactivation(db_url):
    with open_store(db_url) as store:
        register_version(store, _strategy("a"))
        update_strategy_status(store, "a", 1, "archived", "rank 9 of 9")
        first = strategy_version(store, "a", 1)
        store.execute("UPDATE strategies SET archived_at = 'first' WHERE name = 'a'")
        update_strategy_status(store, "a", 1, "archived", "rank 8 of 9")  # archived again: time kept
        again = strategy_version(store, "a", 1)
        update_strategy_status(store, "a", 1, "active", "ignored")
        active = strategy_version(store, "a", 1)
    assert first["status"] == "archived" and first["archived_at"] and first["archive_reason"] == "rank 9 of 9"
    assert (again["archived_at"], again["archive_reason"]) == ("first", "rank 8 of 9")
    assert (active["status"], active["archived_at"], active["archive_reason"]) == ("active", None, None)


def test_knowledge_rewrite_keeps_the_first_time_and_withdraw_deletes(db_url):
    with open_store(db_url) as store:
        add_knowledge(store, "d", "archived", "a@1", {"reason": "first"})
        store.execute("UPDATE knowledge_base SET created_at = 'first'")
        add_knowledge(store, "d", "archived", "a@1", {"reason": "second"})
        add_knowledge(store, "d", "designed", "b@1", {"x": 1})
        rows = knowledge_on(store, "d")
        created = store.scalar("SELECT created_at FROM knowledge_base WHERE kind = 'archived'")
        withdraw_knowledge(store, "d", "archived", "a@1")
        left = knowledge_on(store, "d")
    assert [(r["kind"], r["subject"], json.loads(r["detail"])) for r in rows] == [
        ("archived", "a@1", {"reason": "second"}), ("designed", "b@1", {"x": 1})]
    assert created == "first"
    assert [r["subject"] for r in left] == ["b@1"]


def test_report_row_review_merge_and_scoring_steps(db_url):
    with open_store(db_url) as store:
        assert report_row(store, "d") is None
        row = {"run_date": "d", "report": "{}", "summary": "s", "json_path": "j", "html_path": "h",
               "synthetic_data": 1, "created_at": "t", "updated_at": "t"}
        upsert_report(store, row)
        store_ai_review(store, "d", report='{"ai_review": {}}', summary="s2", review='{"mode": "llm"}', mode="llm",
                        json_path="j", html_path="h")
        upsert_report(store, dict(row, report='{"again": 1}'))  # a re-run keeps the merged review
        stored = report_row(store, "d")
        for step, status in (("score_strategies[0]", "success"), ("score_strategies[1]", "failed"),
                             ("rank_and_update", "success")):
            upsert_step_row(store, {"run_date": "d", "step": step, "status": status, "started_at": "t"})
        steps = scoring_step_rows(store, "d")
    assert stored == {"report": '{"again": 1}', "ai_review": '{"mode": "llm"}', "ai_review_mode": "llm"}
    assert steps == [{"step": "score_strategies[0]", "status": "success"},
                     {"step": "score_strategies[1]", "status": "failed"}]


def test_upgrade_marks_versions_a_race_duplicated_and_then_refuses_duplicates(db_url, tmp_path, monkeypatch):
    from blofin_pipeline.store.connection import SQL_DIR

    first = tmp_path / "sql"
    (first / "migrations").mkdir(parents=True)
    (first / "migrations" / "001_initial.sql").write_text((SQL_DIR / "migrations" / "001_initial.sql").read_text())
    monkeypatch.setattr("blofin_pipeline.store.connection.SQL_DIR", first)
    with open_store(db_url) as store:  # a version-1 database where the race made @1 and @2 of one code
        for version in (1, 2, 3):
            store.upsert("strategies", [{**_strategy("a"), "version": version}], key=("name", "version"))
    monkeypatch.setattr("blofin_pipeline.store.connection.SQL_DIR", SQL_DIR)
    with open_store(db_url) as store:
        hashes = [r["code_hash"] for r in store.query("SELECT code_hash FROM strategies ORDER BY version")]
        assert hashes == ["h-a", "h-a#v2-duplicates-v1", "h-a#v3-duplicates-v1"]
        assert register_version(store, _strategy("a"))[0]["version"] == 1
        with pytest.raises(StoreError):
            store.upsert("strategies", [{**_strategy("a"), "version": 4}], key=("name", "version"))
