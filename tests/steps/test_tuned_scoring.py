"""A tuned version is never tested on the bars its parameters were fitted on (issue 11, item 1).

Through the registry (fitted_until, parent link) and the scoring step's code: on its tuning
day it scores exactly as its parent; on a later day the folds that test after fitted_until
choose among its own candidates.
"""
from __future__ import annotations

import pandas as pd

from blofin_pipeline import steps
from blofin_pipeline.backtest.scoring import _seed
from blofin_pipeline.backtest.walkforward import sample_candidates
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.market.window import load_window
from blofin_pipeline.research.holdout import last_bar
from blofin_pipeline.research.strategy_source import rewrite_class_attrs
from blofin_pipeline.steps.scoring import fitted_lineage, score_records
from blofin_pipeline.store import open_store
from blofin_pipeline.strategies import registry

DAY, LATER = "2026-06-01", "2026-06-13"  # 40-day windows, 4 folds of 5 days: 2 before, 2 after
TUNED = {"fast": 5, "slow": 90}


def _ctx(tmp_path, day: str) -> RunContext:
    config = PipelineConfig(symbols=("BTC-USDT", "ETH-USDT"), history_days=80, score_window_days=40,
                            wf_train_days=20, wf_folds=4)
    return RunContext.create(logical_date=day, data_end=day, config=config,
                             db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)


def _by_symbol(rows: list[dict], name: str) -> dict[str, dict]:
    return {r["symbol"]: r for r in rows if r["strategy"] == name}


def test_a_tuned_version_scores_as_its_parent_up_to_fitted_until(tmp_path):
    day, later = _ctx(tmp_path, DAY), _ctx(tmp_path, LATER)
    steps.ingest_candles(later)                     # the sample history covers both windows
    with open_store(day.db_url) as store:
        registry.sync_builtins(store)
        parent = registry.get_strategy(store, "ema_cross")
        assert TUNED != parent.params and set(TUNED) <= set(parent.param_space)
        candles = load_window(day, store)
        code = rewrite_class_attrs(parent.code, {"name": "ema_cross_tleak", "params": {**parent.params, **TUNED}},
                                   owner="ema_cross")
        tuned = registry.register(store, name="ema_cross_tleak", category=parent.category,
                                  params={**parent.params, **TUNED}, param_space=parent.param_space, code=code,
                                  origin="tuner", run_date=DAY, parent=parent.ref, fitted_until=last_bar(candles))
        assert registry.get_strategy(store, tuned.name).fitted_until == last_bar(candles)
        assert [f[3] for f in fitted_lineage(store, tuned)] == [parent.ref] and fitted_lineage(store, parent) == []

        rows, failed = score_records(day, store, [parent, tuned], candles, "score", [parent, tuned])
        assert not failed
        mine, theirs = _by_symbol(rows, tuned.name), _by_symbol(rows, parent.name)
        for symbol in candles:
            assert mine[symbol]["params"] == theirs[symbol]["params"]
            assert mine[symbol]["sharpe"] == theirs[symbol]["sharpe"]

        rows, failed = score_records(later, store, [parent, tuned], load_window(later, store), "score",
                                     [parent, tuned])
        assert not failed
        mine, theirs = _by_symbol(rows, tuned.name), _by_symbol(rows, parent.name)
        own = sample_candidates(tuned.params, tuned.param_space, later.config.wf_candidates, _seed(tuned.ref))
        fitted_until = pd.Timestamp(tuned.fitted_until)
        for symbol in candles:
            folds = zip(mine[symbol]["params"], theirs[symbol]["params"])
            early = [(m, t) for m, t in folds if pd.Timestamp(m["test_start"]) <= fitted_until]
            late = mine[symbol]["params"][len(early):]
            assert early and late
            assert all(m == t for m, t in early)
            assert all(f["params"] in own for f in late)
