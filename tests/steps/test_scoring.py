"""Out-of-sample scoring on the synthetic market: honest on noise, finds a planted edge."""
from __future__ import annotations

import dataclasses

import pytest

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.steps.scoring import MAX_SCORE_CHUNKS, scoring_chunks
from blofin_pipeline.store import open_store
from blofin_pipeline.store.runs import scoring_step_rows, upsert_step_row

DAY = "2026-06-01"


def scored(tmp_path, edge: str, **cfg) -> list[dict]:
    config = PipelineConfig(symbols=("BTC-USDT", "ETH-USDT"), sample_edge=edge, history_days=200,
                            score_window_days=180, wf_train_days=90, **cfg)
    ctx = RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                            db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)
    steps.ingest_candles(ctx)
    steps.score_strategies(ctx)
    with open_store(ctx.db_url) as store:
        return store.query(
            "SELECT r.strategy, s.category, AVG(r.score) AS score, MAX(r.deflated_sharpe) AS dsr, "
            "COUNT(*) AS n FROM strategy_backtest_results r JOIN strategies s "
            "ON s.name = r.strategy AND s.version = r.version GROUP BY r.strategy, s.category ORDER BY score DESC")


def test_no_planted_edge_nothing_is_significant(tmp_path):
    rows = scored(tmp_path, "")
    assert len(rows) >= 12 and all(r["n"] == 2 for r in rows)
    assert max(r["dsr"] for r in rows) < 0.95, rows


def test_planted_mean_reversion_edge_is_found_by_mean_reversion_strategies(tmp_path):
    rows = scored(tmp_path, "mean_reversion:0.3")
    top3 = rows[:3]
    assert all(r["category"] == "mean_reversion" for r in top3), rows
    assert max(r["dsr"] for r in top3) >= 0.95, top3


def test_window_is_the_runs_own_and_rerun_is_idempotent(tmp_path):
    config = PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=30, wf_train_days=15)
    ctx = RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                            db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)
    steps.ingest_candles(ctx)
    steps.score_strategies(ctx, chunk=0, n_chunks=2)
    steps.score_strategies(ctx, chunk=1, n_chunks=2)
    with open_store(ctx.db_url) as store:
        first = store.table_counts(["strategy_backtest_results", "strategies", "research_trials"])
        windows = store.query("SELECT DISTINCT window_start, window_end FROM strategy_backtest_results")
    steps.score_strategies(ctx, chunk=0, n_chunks=2)
    with open_store(ctx.db_url) as store:
        assert store.table_counts(["strategy_backtest_results", "strategies", "research_trials"]) == first
    assert windows == [{"window_start": "2026-05-02T00:00:00+00:00", "window_end": "2026-06-01T00:00:00+00:00"}]
    assert first["strategy_backtest_results"] == first["strategies"]  # every active strategy, one symbol


def test_scoring_without_candles_says_to_ingest_first(tmp_path):
    ctx = RunContext.create(logical_date=DAY, data_end=DAY, config=PipelineConfig(),
                            db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)
    with pytest.raises(DataValidationError, match="run ingest_candles for 2026-06-01 first"):
        steps.score_strategies(ctx)


def small_ctx(tmp_path, name: str, **cfg) -> RunContext:
    config = PipelineConfig(symbols=("BTC-USDT", "ETH-USDT"), history_days=60, score_window_days=30,
                            wf_train_days=15, wf_folds=4, **cfg)
    return RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                             db_url=f"sqlite:///{tmp_path / name}", workspace=tmp_path)


def test_the_number_of_chunks_follows_the_work():
    one_day = 180 * 24
    assert scoring_chunks(14, 3, one_day, 1_000_000) == 1
    assert scoring_chunks(14, 30, one_day, 1_000_000) == 2
    assert scoring_chunks(14, 50, one_day, 1_000_000) == 4
    assert scoring_chunks(14, 60, one_day, 1_000_000) == scoring_chunks(14, 30, one_day, 500_000) == 4
    assert scoring_chunks(3, 50, one_day, 1) == 3          # a chunk scores whole strategies
    assert scoring_chunks(1000, 50, one_day, 1) == MAX_SCORE_CHUNKS
    assert scoring_chunks(0, 3, one_day, 1_000_000) == 1   # an empty portfolio is still one (empty) task
    with pytest.raises(ValueError, match="work_per_chunk"):
        scoring_chunks(14, 3, one_day, 0)


def test_plan_lists_the_chunks_and_withdraws_an_earlier_plans_chunk_rows(tmp_path):
    ctx = small_ctx(tmp_path, "db.sqlite", score_chunk_work=5_000)
    steps.ingest_candles(ctx)
    with open_store(ctx.db_url) as store:  # a chunk of an earlier, larger plan that failed
        upsert_step_row(store, {"run_date": DAY, "step": "score_strategies[9]", "status": "failed",
                                "started_at": "2026-06-01T00:00:00+00:00", "run_id": "earlier"})
    plan = steps.plan_scoring(ctx)
    work = plan["strategies"] * 2 * 30 * 24
    assert plan["work"] == work and plan["n_chunks"] == -(-work // 5_000) > 1
    assert plan["chunks"] == [{"chunk": i, "n_chunks": plan["n_chunks"]} for i in range(plan["n_chunks"])]
    with open_store(ctx.db_url) as store:
        assert scoring_step_rows(store, DAY) == []
    for kwargs in plan["chunks"]:
        steps.score_strategies(ctx, **kwargs)
    with open_store(ctx.db_url) as store:
        rows = scoring_step_rows(store, DAY)
    assert len(rows) == plan["n_chunks"] and all(r["status"] == "success" for r in rows)


def test_plan_of_the_whole_history_counts_the_stored_bars(tmp_path):
    """score_window_days=0 (the default: every stored bar) sizes the plan from the bars stored,
    not from the zero days."""
    ctx = small_ctx(tmp_path, "db.sqlite", score_chunk_work=5_000)
    ctx = dataclasses.replace(ctx, config=ctx.config.with_(score_window_days=0))
    steps.ingest_candles(ctx)
    plan = steps.plan_scoring(ctx)
    assert plan["bars"] == 60 * 24
    assert plan["work"] == plan["strategies"] * 2 * 60 * 24 and plan["n_chunks"] > 1


def test_scores_do_not_depend_on_the_chunking(tmp_path):
    tables = {}
    for name, n_chunks in (("one.sqlite", 1), ("three.sqlite", 3), ("five.sqlite", 5)):
        ctx = small_ctx(tmp_path, name)
        steps.ingest_candles(ctx)
        for chunk in range(n_chunks):
            steps.score_strategies(ctx, chunk=chunk, n_chunks=n_chunks)
        with open_store(ctx.db_url) as store:
            tables[n_chunks] = (
                store.query("SELECT * FROM strategy_backtest_results ORDER BY strategy, version, symbol"),
                store.query("SELECT run_date, item, n_series FROM research_trials ORDER BY item"))
    assert len(tables[1][0]) >= 2 * 12 and len(tables[1][1]) >= 12
    assert tables[3] == tables[1] and tables[5] == tables[1]
def test_whole_history_span_and_the_trial_count_of_a_day(tmp_path):
    """score_window_days=0 scores every stored candle; each row's DSR counts one series per
    (version, symbol) of the portfolio; a later date re-scoring the same versions adds none."""
    import json

    import pandas as pd

    from blofin_pipeline.store.registry import trial_count, trials_on

    config = PipelineConfig(symbols=("BTC-USDT", "ETH-USDT"), history_days=40, score_window_days=0, wf_train_days=20,
                            wf_folds=3)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    for day in ("2026-06-02", DAY):  # the later date first: a backfill
        ctx = RunContext.create(logical_date=day, data_end=day, config=config, db_url=db, workspace=tmp_path)
        steps.ingest_candles(ctx)
        steps.score_strategies(ctx)
    with open_store(db) as store:
        rows = store.query("SELECT strategy, version, window_start, metrics FROM strategy_backtest_results "
                           "WHERE run_date = :d", {"d": DAY})
        first = store.query("SELECT MIN(ts) AS ts FROM candles WHERE symbol = 'BTC-USDT'")[0]["ts"]
        bars = store.scalar("SELECT COUNT(*) AS n FROM candles WHERE symbol = 'BTC-USDT' AND ts < :end",
                            {"end": 1780272000000})  # 2026-06-01T00:00Z
        versions = {f"{r['strategy']}@{r['version']}" for r in rows}
        assert trials_on(store, DAY) == dict.fromkeys(versions, 2)
        assert trial_count(store, DAY) == trial_count(store, "2026-06-02") == 2 * len(versions)
        metrics = [json.loads(r["metrics"]) for r in rows]
    assert {m["dsr_n_trials"] for m in metrics} == {2 * len(versions)}
    assert {m["oos_bars"] for m in metrics} == {bars - 20 * 24}
    assert {m["dsr_trial_sharpe_std"] for m in metrics} == pytest.approx([(bars - 20 * 24) ** -0.5])
    assert {r["window_start"] for r in rows} == {pd.Timestamp(first, unit="ms", tz="UTC").isoformat()}


def test_candidates_are_checked_side_by_side_and_their_reports_used_in_order(tmp_path, monkeypatch):
    """Two candidates' checks run at the same time (each would wait forever for the other
    at the barrier if they ran one after the other); the rejection lands on the right one."""
    import os
    import threading

    import blofin_pipeline.strategies as strategies
    from blofin_pipeline.steps.scoring import check_candidates
    from blofin_pipeline.strategies import registry
    from blofin_pipeline.strategies.checks import CheckReport

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: the checks run one at a time")
    barrier = threading.Barrier(2, timeout=30)

    def fake_check(code, frame, **kwargs):
        barrier.wait()
        ok = "good" in kwargs["origin"]
        return CheckReport(accepted=ok, name=kwargs["origin"].split("@")[0], category="trend",
                           reasons=[] if ok else ["lookahead: peeks"])

    monkeypatch.setattr(strategies, "check_strategy", fake_check)
    ctx = small_ctx(tmp_path, "db.sqlite")
    with open_store(ctx.db_url) as store:
        records = [registry.register(store, name=name, category="trend", params={}, param_space={},
                                     code=f"# {name}\n", origin="designer", run_date=ctx.run_date,
                                     status="candidate", rationale="test")
                   for name in ("bad_one", "good_one")]
        monkeypatch.setattr("blofin_pipeline.strategies.gate.gate_frame", lambda c: (c, "given"))
        accepted, rejected = check_candidates(ctx, store, records, None, 5.0)
    assert [r.name for r in accepted] == ["good_one"]
    assert list(rejected) == [records[0].ref] and rejected[records[0].ref] == ["lookahead: peeks"]


@pytest.mark.parametrize(("n", "max_size", "sizes"), [
    (1, 4, [1]), (2, 4, [1, 1]), (3, 4, [2, 1]), (5, 4, [3, 2]), (8, 4, [4, 4]), (9, 4, [3, 3, 3]),
    (50, 4, [4] * 11 + [3] * 2), (4, 1, [1, 1, 1, 1]),
])
def test_ml_symbol_groups_use_two_cores_and_respect_the_size_cap(n, max_size, sizes):
    from blofin_pipeline.steps.ml import symbol_groups

    symbols = [f"S{i:02d}-USDT" for i in range(n)]
    groups = symbol_groups(symbols, max_size)
    assert [len(g) for g in groups] == sizes
    assert [s for g in groups for s in g] == symbols   # each once, in order
    assert all(isinstance(s, str) for g in groups for s in g)


SMA_CODE = '''"""Long above the SMA, short below."""
import pandas as pd

from blofin_pipeline.strategies import Strategy
from blofin_pipeline.strategies.indicators import sma


class {cls}(Strategy):
    name = "{name}"
    category = "trend"
    params = {{"window": {window}}}
    param_space = {{"window": (5, 60)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        return (close > sma(close, self.params["window"])).astype(float) * 2.0 - 1.0
'''


def test_sandboxed_versions_scored_side_by_side_score_as_one_at_a_time(tmp_path, monkeypatch):
    """Three sandboxed versions and the built-ins: the rows are the same whether the
    sandboxed ones are scored one at a time or side by side."""
    import blofin_pipeline.steps.scoring as scoring
    from blofin_pipeline.strategies import registry

    def run(workers: int) -> dict:
        monkeypatch.setattr(scoring, "_workers", lambda n: max(1, min(n, workers)))
        ctx = small_ctx(tmp_path / f"w{workers}", "db.sqlite")
        (tmp_path / f"w{workers}").mkdir()
        steps.ingest_candles(ctx)
        with open_store(ctx.db_url) as store:
            for i, window in enumerate((10, 20, 40)):
                registry.register(store, name=f"sma_side_{i}", category="trend", params={"window": window},
                                  param_space={"window": (5, 60)},
                                  code=SMA_CODE.format(cls=f"SmaSide{i}", name=f"sma_side_{i}", window=window),
                                  origin="designer", run_date="2026-05-01", status="active")
        steps.score_strategies(ctx)
        with open_store(ctx.db_url) as store:
            rows = store.query("SELECT strategy, symbol, score, sharpe, deflated_sharpe FROM strategy_backtest_results")
        return {(r["strategy"], r["symbol"]): (r["score"], r["sharpe"], r["deflated_sharpe"]) for r in rows}

    one, two = run(1), run(2)
    assert {k[0] for k in one} >= {"sma_side_0", "sma_side_1", "sma_side_2"}
    assert one == two
