from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store import open_store
from blofin_pipeline.strategies import registry
from blofin_pipeline.strategies.status import (
    candidates_on,
    portfolio_at_start,
    set_status,
    statuses_at,
    withdraw_statuses,
)

CODE = '''
from blofin_pipeline.strategies import Strategy


class Flat(Strategy):
    name = "flat_test"
    category = "trend"
    params = {"n": 3}
    param_space = {"n": (1, 10)}

    def generate_signals(self, candles):
        return candles["close"] * 0.0
'''


def test_register_versions_and_is_idempotent_per_code(db_url):
    with open_store(db_url) as store:
        a = registry.register(store, name="flat_test", category="trend", params={"n": 3}, param_space={"n": (1, 10)},
                              code=CODE, origin="user", run_date="2026-01-01")
        again = registry.register(store, name="flat_test", category="trend", params={"n": 3},
                                  param_space={"n": (1, 10)}, code=CODE, origin="user", run_date="2026-01-02")
        b = registry.register(store, name="flat_test", category="trend", params={"n": 4}, param_space={"n": (1, 10)},
                              code=CODE.replace('"n": 3}', '"n": 4}'), origin="user", run_date="2026-01-02",
                              parent=a.ref)
        assert (a.version, again.version, b.version) == (1, 1, 2)
        assert b.parent == "flat_test@1" and b.status == "candidate"
        with pytest.raises(StrategyError, match="registered with other code"):  # a tuner's name is its code's
            registry.register(store, name="flat_test", category="trend", params={"n": 5}, param_space={},
                              code=CODE.replace('"n": 3}', '"n": 5}'), origin="tuner", run_date="2026-01-02")
        assert registry.get_strategy(store, "flat_test").version == 2
        assert registry.get_strategy(store, "flat_test", 1).code == CODE
        with registry.get_strategy(store, "flat_test", 1).signal_function() as fn:
            assert fn.sandboxed and fn.name == "flat_test" and fn.params == {"n": 3}


def test_status_moves_and_archive_keeps_the_reason(db_url):
    with open_store(db_url) as store:
        rec = registry.register(store, name="flat_test", category="trend", params={}, param_space={}, code=CODE,
                                origin="user", run_date="2026-01-01")
        set_status(store, rec.name, rec.version, "active", run_date="2026-01-01", step="backtest_candidates")
        assert [r.ref for r in portfolio_at_start(store, "2026-01-02")] == ["flat_test@1"]
        set_status(store, rec.name, rec.version, "archived", "rank 30 of 30", run_date="2026-01-03",
                   step="rank_and_update")
        row = store.query("SELECT status, archive_reason, archived_at FROM strategies")[0]
        assert row == {"status": "archived", "archive_reason": "rank 30 of 30", "archived_at": "2026-01-03"}
        with pytest.raises(StrategyError):
            set_status(store, rec.name, rec.version, "deleted", run_date="2026-01-03", step="manual")


def test_each_date_reads_the_registry_as_it_was_when_the_date_started(db_url):
    with open_store(db_url) as store:
        rec = registry.register(store, name="flat_test", category="trend", params={}, param_space={}, code=CODE,
                                origin="designer", run_date="2026-01-02")
        assert candidates_on(store, "2026-01-02")[0].ref == rec.ref
        assert statuses_at(store, "2026-01-01") == [] and portfolio_at_start(store, "2026-01-02") == []
        set_status(store, rec.name, 1, "active", run_date="2026-01-02", step="backtest_candidates")
        set_status(store, rec.name, 1, "archived", "rank 9 of 9", run_date="2026-01-04", step="rank_and_update")
        seen = {d: [r.status for r in statuses_at(store, d)] for d in ("2026-01-02", "2026-01-03", "2026-01-04",
                                                                         "2026-01-05")}
        assert seen == {"2026-01-02": [], "2026-01-03": ["active"], "2026-01-04": ["active"],
                        "2026-01-05": ["archived"]}
        # An older date decided again writes that date only: the later archival stands.
        set_status(store, rec.name, 1, "active", run_date="2026-01-03", step="rank_and_update")
        assert store.scalar("SELECT status FROM strategies") == "archived"
        assert withdraw_statuses(store, "2026-01-04", "rank_and_update") == ["flat_test@1"]
        assert store.scalar("SELECT status FROM strategies") == "active"


def test_the_same_code_registered_by_an_earlier_date_belongs_to_that_date(db_url):
    with open_store(db_url) as store:
        later = registry.register(store, name="flat_test", category="trend", params={}, param_space={}, code=CODE,
                                  origin="designer", run_date="2026-01-05", rationale="from the 5th")
        earlier = registry.register(store, name="flat_test", category="trend", params={}, param_space={}, code=CODE,
                                    origin="designer", run_date="2026-01-03", rationale="from the 3rd")
        assert later.ref == earlier.ref == "flat_test@1"
        assert (earlier.created_run_date, earlier.rationale) == ("2026-01-03", "from the 3rd")
        assert registry.known_hashes_and_names(store, "2026-01-04")[1] == {"flat_test"}
        assert registry.known_hashes_and_names(store, "2026-01-03")[1] == set()


def test_only_the_shipped_builtin_code_runs_in_process(sqlite_url):
    with open_store(sqlite_url) as store:
        registry.sync_builtins(store)
        with registry.get_strategy(store, "ema_cross").signal_function() as fn:
            assert not fn.sandboxed
        # A row that claims to be a built-in but holds other code is sandboxed anyway.
        fake = registry.register(store, name="flat_test", category="trend", params={"n": 3},
                                 param_space={"n": (1, 10)}, code=CODE, origin="builtin", run_date=None)
        with fake.signal_function() as fn:
            assert fn.sandboxed


def test_builtins_sync_once_and_superseded_code_is_archived(db_url):
    with open_store(db_url) as store:
        added = registry.sync_builtins(store)
        assert len(added) >= 12
        assert registry.sync_builtins(store) == []
        assert len(portfolio_at_start(store, "2020-01-01")) == len(added)  # built-ins hold on every date
        # Simulate an older stored version of a built-in: the next sync archives it.
        store.execute("UPDATE strategies SET code = 'old', code_hash = 'old', version = 0 WHERE name = 'ema_cross'")
        assert registry.sync_builtins(store) == ["ema_cross@1"]
        rows = store.query("SELECT version, status, archive_reason FROM strategies WHERE name = 'ema_cross' "
                           "ORDER BY version")
        assert rows[0]["status"] == "archived" and "superseded" in rows[0]["archive_reason"]
        assert rows[1]["status"] == "active"
        categories = {r["category"] for r in store.query("SELECT DISTINCT category FROM strategies")}
        assert len(categories) >= 5



# -- concurrent registration -------------------------------------------------------------
RACE_NAMES = [f"race_{i}" for i in range(12)]
RACE_PROCESSES = 4


def _register_all(url: str, barrier) -> list[tuple[str, int]]:
    """One of the racing processes: register every name with the same code, all at once."""
    with open_store(url, migrate=False) as store:
        barrier.wait(timeout=60)
        out = []
        for name in RACE_NAMES:
            rec = registry.register(store, name=name, category="trend", params={"n": 3},
                                    param_space={"n": (1, 10)}, code=CODE.replace("flat_test", name),
                                    origin="designer", run_date="2026-01-01")
            out.append((rec.name, rec.version))
        return out


def test_processes_registering_the_same_code_at_once_make_one_version(db_url):
    import multiprocessing

    with open_store(db_url):
        pass  # migrate once, before the race
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Manager().Barrier(RACE_PROCESSES)
    with mp.Pool(RACE_PROCESSES) as pool:
        results = pool.starmap(_register_all, [(db_url, barrier)] * RACE_PROCESSES, chunksize=1)
    assert all(r == [(name, 1) for name in RACE_NAMES] for r in results), results
    with open_store(db_url) as store:
        rows = store.query("SELECT name, version, code_hash FROM strategies ORDER BY name, version")
    assert [(r["name"], r["version"]) for r in rows] == [(name, 1) for name in sorted(RACE_NAMES)]


def test_a_backfill_registering_the_same_tune_earlier_takes_its_fitted_until(db_url):
    # Run in date order the earlier date would have registered it, with its own last bar.
    kwargs = {"name": "flat_test", "category": "trend", "params": {"n": 3}, "param_space": {"n": (1, 10)},
              "code": CODE, "origin": "tuner", "parent": "flat@1"}
    with open_store(db_url) as store:
        late = registry.register(store, **kwargs, run_date="2026-03-01", fitted_until="2026-03-01T00:00:00+00:00")
        assert late.fitted_until == "2026-03-01T00:00:00+00:00"
        early = registry.register(store, **kwargs, run_date="2026-02-01", fitted_until="2026-02-01T00:00:00+00:00")
        again = registry.register(store, **kwargs, run_date="2026-03-01", fitted_until="2026-03-01T00:00:00+00:00")
        assert early.version == again.version == late.version
        assert early.fitted_until == again.fitted_until == "2026-02-01T00:00:00+00:00"
        assert early.created_run_date == "2026-02-01"
