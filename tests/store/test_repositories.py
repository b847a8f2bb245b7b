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
    add_status_entry,
    delete_status_entry,
    delete_trials,
    delete_version,
    LAST_DATE,
    items_with_trials_on,
    record_trials,
    register_version,
    status_rows_at,
    strategy_version,
    trial_count,
    trials_on,
    unused_versions_created_on,
)
from blofin_pipeline.store.reports import report_row, store_ai_review, upsert_report
from blofin_pipeline.store.runs import scoring_step_rows, upsert_step_row


def _strategy(name: str, status: str = "active", code: str = "") -> dict:
    return {"name": name, "category": "trend", "params": {}, "param_space": {}, "code": f"# {name}{code}",
            "code_hash": f"h-{name}{code}", "status": status, "origin": "user", "parent": None, "rationale": None,
            "created_at": "t", "created_run_date": "2026-01-01", "archived_at": None, "archive_reason": None}


def test_trial_count_counts_each_item_symbol_series_once(db_url):
    with open_store(db_url) as store:
        record_trials(store, "2026-01-01", [("a@1", 3), ("b@1", 3)])
        record_trials(store, "2026-01-02", [("a@1", 3), ("c@1", 2), ("model:xgb", 3)])
        record_trials(store, "2026-01-03", [("a@1", 4)])  # a symbol more from that date on
        assert trial_count(store, "2026-01-01") == 6
        assert trial_count(store, "2026-01-02") == 6 + 2 + 3  # a@1 again is the same series
        assert trial_count(store, "2026-01-03") == 3 + 2 + 3 + 4
        assert trial_count(store, LAST_DATE) == trial_count(store, "2026-01-03")
        assert trials_on(store, "2026-01-02") == {"a@1": 3, "c@1": 2, "model:xgb": 3}
        # a step's own universe: earlier dates plus its items, whatever else the date recorded
        assert trial_count(store, "2026-01-02", [("a@1", 3), ("d@1", 3)]) == 6 + 3
        assert trial_count(store, "2026-01-02", []) == 6
        with pytest.raises(ValueError, match="n_symbols must be >= 1"):
            record_trials(store, "2026-01-02", [("e@1", 0)])


DAYS = {"2026-01-01": [("a@1", 3), ("b@1", 3)], "2026-01-02": [("a@1", 3), ("c@1", 3), ("ensemble:vote", 2)],
        "2026-01-03": [("c@1", 3), ("d@1", 3)], "2026-01-04": [("a@1", 3), ("e@1", 1)]}


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1, 2, 0]])
def test_trial_count_does_not_depend_on_the_order_dates_run(tmp_path, order):
    """Decision 6: a date's N counts only trials of dates <= it: backfilling or re-running
    dates in any order gives each date the same N as running them in date order."""
    dates = sorted(DAYS)
    with open_store(f"sqlite:///{tmp_path / 'in-order.db'}") as store:
        in_order = {}
        for d in dates:
            in_order[d] = trial_count(store, d, DAYS[d])  # what the date's step computes when it runs
            record_trials(store, d, DAYS[d])
        assert [trial_count(store, d) for d in dates] == [in_order[d] for d in dates] == [6, 11, 14, 15]
    with open_store(f"sqlite:///{tmp_path / 'shuffled.db'}") as store:
        for i in order:
            d = dates[i]
            step_n = trial_count(store, d, DAYS[d])
            record_trials(store, d, DAYS[d])
            if all(e in order[:order.index(i)] for e in range(i)):  # every earlier date already ran
                assert step_n == in_order[d]
        assert [trial_count(store, d) for d in dates] == [in_order[d] for d in dates]


def _entry(name: str, from_date: str, seq: int, status: str, reason: str | None = None) -> dict:
    return {"name": name, "version": 1, "from_date": from_date, "seq": seq, "step": f"s{seq}", "status": status,
            "reason": reason}


def test_versions_count_up_per_name(db_url):
    with open_store(db_url) as store:
        assert register_version(store, _strategy("a"))[0]["version"] == 1
        assert register_version(store, _strategy("a", code="v2"))[0]["version"] == 2
        again, inserted = register_version(store, _strategy("a", code="v2"))
        assert (again["version"], inserted) == (2, False)  # the same code is the same version
        assert register_version(store, _strategy("b", "candidate")) == (strategy_version(store, "b", 1), True)
        assert json.loads(strategy_version(store, "b", 1)["params"]) == {}
        assert strategy_version(store, "b", 2) is None


def test_status_at_a_point_of_a_date_and_the_cached_latest_status(db_url):
    with open_store(db_url) as store:
        register_version(store, _strategy("a", "candidate"))
        add_status_entry(store, _entry("a", "2026-01-02", 2, "candidate"))
        add_status_entry(store, _entry("a", "2026-01-02", 3, "active"))
        add_status_entry(store, _entry("a", "2026-01-04", 4, "archived", "rank 9 of 9"))

        def at(date: str, seq: int) -> list:
            return [(r["status"], r["status_from"]) for r in status_rows_at(store, date, seq)]

        assert at("2026-01-02", -1) == [] and at("2026-01-02", 2) == [("candidate", "2026-01-02")]
        assert at("2026-01-03", -1) == [("active", "2026-01-02")] == at("2026-01-04", 3)
        assert at("2026-01-04", 4) == [("archived", "2026-01-04")]
        cached = strategy_version(store, "a", 1)
        assert (cached["status"], cached["archive_reason"], cached["archived_at"]) == ("archived", "rank 9 of 9",
                                                                                      "2026-01-04")
        delete_status_entry(store, "a", 1, "2026-01-04", "s4")
        cached = strategy_version(store, "a", 1)
        assert (cached["status"], cached["archive_reason"], cached["archived_at"]) == ("active", None, None)


def test_versions_only_their_own_date_used_can_be_deleted(db_url):
    with open_store(db_url) as store:
        for name in ("used", "unused"):
            register_version(store, {**_strategy(name, "candidate"), "origin": "designer",
                                     "created_run_date": "2026-01-02"})
            add_status_entry(store, {**_entry(name, "2026-01-02", 2, "candidate")})
        store.upsert("ranking_history", [{"run_date": "2026-01-03", "item_type": "strategy", "item": "used@1",
                                          "metric": "score", "value": 1.0, "rank": 1, "decision": "kept",
                                          "reason": "r", "created_at": "t"}], key=("run_date", "item_type", "item"))
        assert unused_versions_created_on(store, "2026-01-02", "designer") == [("unused", 1)]
        delete_version(store, "unused", 1)
        assert strategy_version(store, "unused", 1) is None
        assert store.scalar("SELECT COUNT(*) AS n FROM strategy_status_history") == 1
        record_trials(store, "2026-01-02", [("used@1", 7), ("unused@1", 7)])
        delete_trials(store, "2026-01-02", ["unused@1"])
        assert items_with_trials_on(store, "2026-01-02") == {"used@1"}


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
        merged = report_row(store, "d")
        upsert_report(store, dict(row, report='{"again": 1}'))  # a re-run replaces the row, the review with it
        stored = report_row(store, "d")
        for step, status in (("score_strategies[0]", "success"), ("score_strategies[1]", "failed"),
                             ("rank_and_update", "success")):
            upsert_step_row(store, {"run_date": "d", "step": step, "status": status, "started_at": "t"})
        steps = scoring_step_rows(store, "d")
    assert merged == {"report": '{"ai_review": {}}', "ai_review": '{"mode": "llm"}', "ai_review_mode": "llm"}
    assert stored == {"report": '{"again": 1}', "ai_review": None, "ai_review_mode": None}
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


def test_migration_008_turns_configurations_into_series(db_url, tmp_path, monkeypatch):
    """research_trials.n_trials counted parameter configurations per version (7); after
    008 n_series counts the symbols each version's results were scored on that date."""
    from blofin_pipeline.store.connection import SQL_DIR

    before = tmp_path / "sql"
    (before / "migrations").mkdir(parents=True)
    for path in (SQL_DIR / "migrations").glob("*.sql"):
        if int(path.name[:3]) < 8:
            (before / "migrations" / path.name).write_text(path.read_text())
    monkeypatch.setattr("blofin_pipeline.store.connection.SQL_DIR", before)
    result = {"timeframe": "1H", "phase": "score", "window_start": "a", "window_end": "b"}
    with open_store(db_url) as store:
        store.upsert("research_trials", [{"run_date": "2026-01-01", "item": i, "n_trials": 7}
                                         for i in ("a@1", "b@2", "failed@1")], key=("run_date", "item"))
        store.upsert("strategy_backtest_results",
                     [{**result, "run_date": "2026-01-01", "strategy": s, "version": v, "symbol": sym}
                      for s, v, syms in (("a", 1, ("BTC-USDT", "ETH-USDT")), ("b", 2, ("BTC-USDT",)))
                      for sym in syms], key=("run_date", "strategy", "version", "symbol"))
    monkeypatch.setattr("blofin_pipeline.store.connection.SQL_DIR", SQL_DIR)
    with open_store(db_url) as store:
        assert trials_on(store, "2026-01-01") == {"a@1": 2, "b@2": 1}
        assert trial_count(store, "2026-01-01") == 3
