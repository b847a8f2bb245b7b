"""Ranking on hand-built databases: SQLite always, PostgreSQL when reachable (db_url fixture)."""
from __future__ import annotations

import math

import pytest

from blofin_pipeline.config import PipelineConfig
from blofin_pipeline.exceptions import ConfigError, PipelineError
from blofin_pipeline.ranking.leaderboard import (
    LEADERBOARD_KEYS,
    leaderboard,
    leaderboard_view,
)
from blofin_pipeline.ranking.ranker import (
    archive_bottom,
    keep_top_ensembles,
    keep_top_models,
    keep_top_strategies,
    rank,
    rank_items,
)
from blofin_pipeline.store import Store
from tests.reporting.seed import (
    add_ensemble,
    add_model,
    add_result,
    add_scored,
    add_strategy,
)

DAY = "2026-01-05"


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        s.migrate()
        yield s


def statuses(store: Store) -> dict[str, str]:
    return {f"{r['name']}@{r['version']}": r["status"] for r in store.query("SELECT name, version, status FROM strategies")}


def seed_six(store: Store) -> None:
    # mean scores: s1 0.9, s2 0.7, s3 0.5, s4 0.3, s5 0.1, s6 -0.2
    for i, (a, b) in enumerate([(1.0, 0.8), (0.6, 0.8), (0.5, 0.5), (0.2, 0.4), (0.0, 0.2), (-0.3, -0.1)], 1):
        add_scored(store, DAY, f"s{i}", [a, b], category="trend" if i % 2 else "momentum")


def test_rank_items_orders_best_first_missing_last_and_ties_by_name():
    decisions = rank_items({"b": 1.0, "a": 1.0, "nan": math.nan, "none": None, "c": 2.0}, metric="score", count=2)
    assert [d.item for d in decisions] == ["c", "a", "b", "nan", "none"]
    assert [d.decision for d in decisions] == ["kept", "kept", "archived", "archived", "archived"]
    assert decisions[3].value is None
    assert decisions[2].reason == "rank 3 of 5 by score (1) below top 2"


def test_rank_items_lower_is_better_for_log_loss():
    decisions = rank_items({"a": 0.7, "b": 0.5, "c": None}, metric="log_loss", count=1)
    assert [d.item for d in decisions] == ["b", "a", "c"]


def test_keep_top_strategies_keeps_top_n_and_archives_rest_with_reasons(store):
    seed_six(store)
    outcome = keep_top_strategies(store, DAY, count=3)
    assert outcome.kept == ["s1@1", "s2@1", "s3@1"]
    assert outcome.archived == ["s4@1", "s5@1", "s6@1"]
    assert statuses(store) == {"s1@1": "active", "s2@1": "active", "s3@1": "active",
                               "s4@1": "archived", "s5@1": "archived", "s6@1": "archived"}
    row = store.query("SELECT archived_at, archive_reason FROM strategies WHERE name = 's4'")[0]
    assert row["archived_at"]
    assert row["archive_reason"] == "rank 4 of 6 by score (0.3) below top 3"
    kept = store.query("SELECT archived_at, archive_reason FROM strategies WHERE name = 's1'")[0]
    assert kept == {"archived_at": None, "archive_reason": None}


def test_every_decision_is_in_ranking_history(store):
    seed_six(store)
    keep_top_strategies(store, DAY, count=2)
    rows = store.query("SELECT * FROM ranking_history WHERE run_date = :d ORDER BY rank", {"d": DAY})
    assert [(r["item"], r["rank"], r["decision"]) for r in rows] == [
        ("s1@1", 1, "kept"), ("s2@1", 2, "kept"), ("s3@1", 3, "archived"),
        ("s4@1", 4, "archived"), ("s5@1", 5, "archived"), ("s6@1", 6, "archived")]
    assert all(r["item_type"] == "strategy" and r["metric"] == "score" for r in rows)
    assert rows[0]["value"] == pytest.approx(0.9)
    assert rows[5]["reason"] == "rank 6 of 6 by score (-0.2) below top 2"
    kb = store.query("SELECT subject FROM knowledge_base WHERE kind = 'archived' ORDER BY subject")
    assert [r["subject"] for r in kb] == ["s3@1", "s4@1", "s5@1", "s6@1"]


def test_rerun_of_a_date_changes_nothing(store):
    seed_six(store)
    keep_top_strategies(store, DAY, count=3)
    tables = ("ranking_history", "strategies", "knowledge_base")
    counts = store.table_counts(tables)
    # every column but created_at (when the row was written: a rerun a second later differs there)
    ranking = ("SELECT run_date, item_type, item, metric, value, rank, decision, reason FROM ranking_history "
               "ORDER BY item")
    before = store.query(ranking)
    registry = store.query("SELECT name, status, archived_at, archive_reason FROM strategies ORDER BY name")
    again = keep_top_strategies(store, DAY, count=3)
    assert again.kept == ["s1@1", "s2@1", "s3@1"] and len(again.decisions) == 6
    assert store.table_counts(tables) == counts
    assert store.query(ranking) == before
    assert store.query("SELECT name, status, archived_at, archive_reason FROM strategies ORDER BY name") == registry


def test_rerun_with_a_larger_count_restores_what_it_archived(store):
    seed_six(store)
    keep_top_strategies(store, DAY, count=2)
    outcome = keep_top_strategies(store, DAY, count=4)
    assert outcome.kept == ["s1@1", "s2@1", "s3@1", "s4@1"]
    assert statuses(store)["s3@1"] == "active"
    assert store.query("SELECT archive_reason FROM strategies WHERE name = 's3'")[0]["archive_reason"] is None
    kb = store.query("SELECT subject FROM knowledge_base WHERE kind = 'archived' ORDER BY subject")
    assert [r["subject"] for r in kb] == ["s5@1", "s6@1"]


def test_missing_metric_ranks_last(store):
    seed_six(store)
    add_scored(store, DAY, "broken", [float("nan"), None])
    add_scored(store, DAY, "half", [None, 2.0])  # mean over the symbols with a value: 2.0
    outcome = keep_top_strategies(store, DAY, count=3)
    assert outcome.decisions[0].item == "half@1"
    last = outcome.decisions[-1]
    assert last.item == "broken@1" and last.value is None and last.decision == "archived"
    assert "(no value)" in last.reason


def test_every_version_active_before_the_ranking_takes_part_and_only_those(store):
    seed_six(store)
    add_scored(store, DAY, "old", [5.0, 5.0], status="archived")
    add_scored(store, DAY, "new", [0.8, 0.8], status="candidate", origin="designer", created_run_date=DAY)
    add_strategy(store, "idle")  # active but not scored that day: it ranks last, without a value
    add_strategy(store, "ml_vote_btc_20260104", category="ml", origin="ml", created_run_date="2026-01-04")
    outcome = keep_top_strategies(store, DAY, count=2)
    items = [d.item for d in outcome.decisions]
    assert "old@1" not in items and "new@1" not in items  # archived; a candidate waits for its checks
    assert set(items[-2:]) == {"idle@1", "ml_vote_btc_20260104@1"}  # ML strategies are ranked like the others
    assert outcome.decisions[-1].value is None
    assert statuses(store)["ml_vote_btc_20260104@1"] == "archived"
    assert outcome.kept == ["s1@1", "s2@1"]
    assert statuses(store)["new@1"] == "candidate"
    assert statuses(store)["old@1"] == "archived"
    assert statuses(store)["idle@1"] == "archived"


def test_versions_are_ranked_and_archived_separately(store):
    add_scored(store, DAY, "ema", [0.2, 0.2], version=1)
    add_scored(store, DAY, "ema", [0.9, 0.9], version=2, origin="tuner")
    add_scored(store, DAY, "rsi", [0.5, 0.5])
    outcome = keep_top_strategies(store, DAY, count=2)
    assert outcome.kept == ["ema@2", "rsi@1"] and outcome.archived == ["ema@1"]
    assert statuses(store) == {"ema@1": "archived", "ema@2": "active", "rsi@1": "active"}


def test_configurable_metric_and_count(store):
    # score favours a, sharpe favours b
    add_scored(store, DAY, "a", [1.0, 1.0], sharpe=0.1)
    add_scored(store, DAY, "b", [0.1, 0.1], sharpe=2.0)
    add_scored(store, DAY, "c", [0.5, 0.5], sharpe=1.0)
    outcome = keep_top_strategies(store, DAY, count=1, metric="sharpe")
    assert outcome.kept == ["b@1"] and outcome.metric == "sharpe"
    assert outcome.decisions[1].reason == "rank 2 of 3 by sharpe (1) below top 1"
    with pytest.raises(ConfigError, match="cannot rank strategies by 'drop table'"):
        keep_top_strategies(store, DAY, metric="drop table")


def test_backfill_of_an_older_date_does_not_overwrite_a_newer_status(store):
    from blofin_pipeline.strategies.status import statuses_at

    later = "2026-01-06"
    add_scored(store, DAY, "a", [0.1, 0.1])
    add_scored(store, DAY, "b", [0.9, 0.9])
    add_result(store, later, "a", "BTC-USDT", 1.0)
    add_result(store, later, "b", "BTC-USDT", 0.0)
    keep_top_strategies(store, later, count=1)
    assert statuses(store) == {"a@1": "active", "b@1": "archived"}
    outcome = keep_top_strategies(store, DAY, count=1)  # DAY started before later archived b: both take part
    assert outcome.kept == ["b@1"] and outcome.archived == ["a@1"]
    assert statuses(store)["b@1"] == "archived"  # the later decision stands: no re-activation
    assert {r.ref: r.status for r in statuses_at(store, later)} == {"a@1": "archived", "b@1": "active"}
    assert store.scalar("SELECT COUNT(*) AS n FROM ranking_history") == 4


def test_models_ranked_by_f1_and_ensembles_by_accuracy(store):
    for name, f1, acc in [("m1", 0.40, 0.9), ("m2", 0.70, 0.5), ("m3", None, 0.99), ("m4", 0.55, 0.6)]:
        add_model(store, DAY, name, f1=f1, accuracy=acc)
    models = keep_top_models(store, DAY, count=2)
    assert models.kept == ["m2", "m4"] and models.archived == ["m1", "m3"]
    rows = {r["model_name"]: r for r in store.query("SELECT model_name, status, archive_reason FROM ml_model_results")}
    assert rows["m2"]["status"] == "active" and rows["m2"]["archive_reason"] is None
    assert rows["m3"]["status"] == "archived" and rows["m3"]["archive_reason"] == "rank 4 of 4 by f1 (no value: mean over 1 symbol(s)) below top 2"
    by_accuracy = keep_top_models(store, DAY, count=1, metric="accuracy")
    assert by_accuracy.kept == ["m3"]
    by_loss = keep_top_models(store, DAY, count=1, metric="log_loss")
    assert len(by_loss.decisions) == 4

    for name, acc in [("e1", 0.51), ("e2", 0.58), ("e3", float("nan")), ("e4", 0.55), ("e5", 0.50)]:
        add_ensemble(store, DAY, name, accuracy=acc)
    ensembles = keep_top_ensembles(store, DAY)
    assert ensembles.kept == ["e2", "e4", "e1"] and ensembles.archived == ["e5", "e3"]
    hist = store.query("SELECT item, rank, decision FROM ranking_history WHERE item_type = 'ensemble' ORDER BY rank")
    assert [(r["item"], r["rank"], r["decision"]) for r in hist][-1] == ("e3", 5, "archived")
    status = {r["ensemble_name"]: r["status"] for r in store.query("SELECT ensemble_name, status FROM ml_ensembles")}
    assert status == {"e1": "active", "e2": "active", "e3": "archived", "e4": "active", "e5": "archived"}


def test_ml_kinds_ranked_on_their_mean_over_symbols_not_their_best_symbol(store):
    # lgbm is best on one symbol but worse on average: the mean decides, for every symbol's row.
    for symbol, lgbm, logreg in [("BTC-USDT", 0.90, 0.60), ("ETH-USDT", 0.30, 0.62), ("SOL-USDT", 0.30, 0.58)]:
        add_model(store, DAY, f"lgbm_{symbol}", f1=lgbm, model_type="lgbm", symbol=symbol)
        add_model(store, DAY, f"logreg_{symbol}", f1=logreg, model_type="logreg", symbol=symbol)
    models = keep_top_models(store, DAY, count=1)
    assert models.kept == ["logreg"] and models.archived == ["lgbm"]
    assert models.decisions[0].value == pytest.approx(0.60)
    status = {r["model_name"]: r["status"] for r in store.query("SELECT model_name, status FROM ml_model_results")}
    assert {n: st for n, st in status.items() if n.startswith("lgbm")} == {
        "lgbm_BTC-USDT": "archived", "lgbm_ETH-USDT": "archived", "lgbm_SOL-USDT": "archived"}
    assert all(st == "active" for n, st in status.items() if n.startswith("logreg"))


def test_models_of_other_dates_are_not_touched(store):
    add_model(store, DAY, "m1", f1=0.1)
    add_model(store, "2026-01-04", "m1", f1=0.9)
    add_model(store, DAY, "m2", f1=0.5)
    keep_top_models(store, DAY, count=1)
    rows = {(r["run_date"], r["model_name"]): r["status"] for r in store.query(
        "SELECT run_date, model_name, status FROM ml_model_results")}
    assert rows == {(DAY, "m1"): "archived", (DAY, "m2"): "active", ("2026-01-04", "m1"): "active"}


def test_archive_bottom_archives_with_reason_and_logs(store):
    seed_six(store)
    keep_top_strategies(store, DAY, count=6)
    archived = archive_bottom(store, DAY, "strategy", ["s2@1"], "manual: overfit on one symbol")
    assert archived == ["s2@1"]
    row = store.query("SELECT status, archive_reason FROM strategies WHERE name = 's2'")[0]
    assert row == {"status": "archived", "archive_reason": "manual: overfit on one symbol"}
    hist = store.query("SELECT metric, rank, decision, reason FROM ranking_history WHERE item = 's2@1'")[0]
    assert hist == {"metric": "score", "rank": 2, "decision": "archived", "reason": "manual: overfit on one symbol"}
    add_strategy(store, "unranked")
    archive_bottom(store, DAY, "strategy", ["unranked"], "retired")
    hist = store.query("SELECT metric, rank FROM ranking_history WHERE item = 'unranked@1'")[0]
    assert hist == {"metric": "manual", "rank": 0}
    add_model(store, DAY, "m1", f1=0.3)
    assert archive_bottom(store, DAY, "model", ["m1"], "drift") == ["m1"]
    assert store.scalar("SELECT status FROM ml_model_results WHERE model_name = 'm1'") == "archived"
    rerun = keep_top_strategies(store, DAY, count=6)  # a manual archival survives a re-run of the ranking
    assert "s2@1" not in [d.item for d in rerun.decisions] and statuses(store)["s2@1"] == "archived"
    with pytest.raises(PipelineError, match="no model named 'ghost'"):
        archive_bottom(store, DAY, "model", ["ghost"], "x")
    with pytest.raises(ConfigError):
        archive_bottom(store, DAY, "strategy", ["s1@1"], " ")


def test_rank_and_update_uses_the_config(store):
    seed_six(store)
    for i in range(4):
        add_model(store, DAY, f"m{i}", f1=i / 10)
    add_ensemble(store, DAY, "e0", accuracy=0.5)
    summary = rank(store, DAY, PipelineConfig(top_strategies=4, top_models=1, top_ensembles=3))
    assert summary["strategies"]["kept"] == ["s1@1", "s2@1", "s3@1", "s4@1"]
    assert summary["models"]["kept"] == ["m3"] and summary["models"]["metric"] == "f1"
    assert summary["ensembles"]["ranked"] == 1 and summary["ensembles"]["archived"] == []
    summary = rank(store, DAY, PipelineConfig(top_strategies=1, strategy_metric="deflated_sharpe"))
    assert summary["strategies"]["metric"] == "deflated_sharpe" and len(summary["strategies"]["kept"]) == 1


def test_rank_and_update_runs_on_an_empty_day(store):
    summary = rank(store, DAY, PipelineConfig())
    assert summary["strategies"]["ranked"] == 0 and summary["models"]["ranked"] == 0


def test_leaderboard_returns_the_latest_ranking(store):
    assert leaderboard(store) == []
    seed_six(store)
    rows = leaderboard(store)  # results but no ranking yet: ordered by mean score
    assert [r["strategy"] for r in rows][:2] == ["s1@1", "s2@1"]
    keep_top_strategies(store, DAY, count=2)
    add_result(store, "2026-01-04", "s6", "BTC-USDT", 3.0)  # an older date does not count as latest
    rows = leaderboard(store)
    assert tuple(rows[0]) == LEADERBOARD_KEYS
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["strategy"] == "s1@1" and rows[0]["score"] == pytest.approx(0.9)
    assert rows[0]["status"] == "active" and rows[-1]["status"] == "archived"
    assert rows[0]["category"] == "trend" and rows[0]["max_drawdown"] == pytest.approx(-0.1)
    assert leaderboard(store, run_date="2026-01-04")[0]["strategy"] == "s6@1"


def test_leaderboard_view_names_its_date_and_its_data(store):
    seed_six(store)
    keep_top_strategies(store, DAY, count=2)
    view = leaderboard_view(store)
    assert (view["run_date"], view["ranked"], len(view["rows"])) == (DAY, True, 6)
    assert view["data"] == {"sources": [], "synthetic": None, "from": "candles"}  # no report, no candles
    store.upsert("daily_reports", [{"run_date": DAY, "report": '{"synthetic": true, "data_sources": ["sample"]}',
                                    "created_at": "t", "updated_at": "t"}], key=("run_date",))
    assert leaderboard_view(store)["data"] == {"sources": ["sample"], "synthetic": True, "from": "report"}
