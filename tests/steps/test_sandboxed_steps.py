"""The hostile corpus through the steps of a day: as registered active strategies (scored
every day) and as candidates (the gate), with Airflow's Anthropic connection holding a
canary key in this process's environment.

Nothing a hostile file tries may happen (marker files, connections, survivors, killed
processes: see tests/strategies/test_hostile.py), no hostile strategy stays active, and
neither the canary nor stolen text reaches the database or the log.
"""
from __future__ import annotations

import json

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.store import open_store
from blofin_pipeline.strategies import registry
from blofin_pipeline.strategies.status import statuses_on
from tests.strategies.test_hostile import HOSTILE, headers, traps  # noqa: F401 - the fixture

DAY = "2026-06-01"


def _context(tmp_path) -> RunContext:
    config = PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=40, wf_train_days=20,
                            n_designs=0, n_tunes=0, ml_enabled=False)
    return RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                             db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)


def _dump(db_url: str) -> str:
    with open_store(db_url) as store:
        return json.dumps([store.query(f"SELECT * FROM {table}") for table in  # noqa: S608 - fixed names
                           ("strategies", "knowledge_base", "pipeline_runs",
                            "strategy_backtest_results")], default=str)


def test_hostile_strategies_registered_as_active_are_scored_only_in_the_sandbox(tmp_path, traps, caplog):
    caplog.set_level("INFO")
    ctx = _context(tmp_path)
    steps.ingest_candles(ctx)
    with open_store(ctx.db_url) as store:
        for path in HOSTILE:  # as if a hostile design had passed the gate on an earlier day
            registry.register(store, name=path.stem, category="trend", params={"window": 10},
                              param_space={"window": (2, 100)}, code=traps.code(path), origin="designer",
                              run_date="2026-05-01", status="active")
    summary = steps.score_strategies(ctx)
    harmless = {p.stem for p in HOSTILE if headers(p)["kernel"] == "accepted"}
    assert set(summary["failed"]) == {f"{p.stem}@1" for p in HOSTILE} - {f"{h}@1" for h in harmless}
    with open_store(ctx.db_url) as store:
        active = {r.name for r in statuses_on(store, ctx.run_date).values() if r.status == "active"}
    assert active & {p.stem for p in HOSTILE} == harmless  # harmless in the sandbox: never sees Airflow's env
    traps.assert_no_harm(_dump(ctx.db_url), caplog.text)


def test_hostile_candidates_are_rejected_at_the_gate(tmp_path, traps, caplog):
    caplog.set_level("INFO")
    ctx = _context(tmp_path)
    steps.ingest_candles(ctx)
    with open_store(ctx.db_url) as store:
        for path in HOSTILE:  # as the designer (or add-strategy) would register them
            registry.register(store, name=path.stem, category="trend", params={"window": 10},
                              param_space={"window": (2, 100)}, code=traps.code(path), origin="designer",
                              run_date=DAY, status="candidate")
    result = steps.backtest_candidates(ctx)
    assert result["accepted"] == [] and len(result["rejected"]) == len(HOSTILE)
    assert all(reasons[0].startswith("static: ") for reasons in result["rejected"].values())
    with open_store(ctx.db_url) as store:
        active = {r.name for r in statuses_on(store, ctx.run_date).values() if r.status == "active"}
        assert active & {p.stem for p in HOSTILE} == set()
    traps.assert_no_harm(_dump(ctx.db_url), caplog.text)
