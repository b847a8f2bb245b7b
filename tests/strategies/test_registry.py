from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.store import open_store
from blofin_pipeline.strategies import registry

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
                              code=CODE.replace('"n": 3}', '"n": 4}'), origin="tuner", run_date="2026-01-02",
                              parent=a.ref)
        assert (a.version, again.version, b.version) == (1, 1, 2)
        assert b.parent == "flat_test@1" and b.status == "candidate"
        assert registry.get_strategy(store, "flat_test").version == 2
        assert registry.get_strategy(store, "flat_test", 1).code == CODE
        with registry.get_strategy(store, "flat_test", 1).signal_function() as fn:
            assert fn.sandboxed and fn.name == "flat_test" and fn.params == {"n": 3}


def test_status_moves_and_archive_keeps_the_reason(db_url):
    with open_store(db_url) as store:
        rec = registry.register(store, name="flat_test", category="trend", params={}, param_space={}, code=CODE,
                                origin="user", run_date="d")
        registry.set_status(store, rec.name, rec.version, "active")
        assert [r.ref for r in registry.strategies_with_status(store, "active")] == ["flat_test@1"]
        registry.set_status(store, rec.name, rec.version, "archived", "rank 30 of 30")
        row = store.query("SELECT status, archive_reason, archived_at FROM strategies")[0]
        assert row["status"] == "archived" and row["archive_reason"] == "rank 30 of 30" and row["archived_at"]
        with pytest.raises(StrategyError):
            registry.set_status(store, rec.name, rec.version, "deleted")


def test_only_the_shipped_builtin_code_runs_in_process(sqlite_url):
    with open_store(sqlite_url) as store:
        registry.sync_builtins(store, "2026-01-01")
        with registry.get_strategy(store, "ema_cross").signal_function() as fn:
            assert not fn.sandboxed
        # A row that claims to be a built-in but holds other code is sandboxed anyway.
        fake = registry.register(store, name="flat_test", category="trend", params={"n": 3},
                                 param_space={"n": (1, 10)}, code=CODE, origin="builtin", run_date=None)
        with fake.signal_function() as fn:
            assert fn.sandboxed


def test_builtins_sync_once_and_superseded_code_is_archived(db_url):
    with open_store(db_url) as store:
        added = registry.sync_builtins(store, "2026-01-01")
        assert len(added) >= 12
        assert registry.sync_builtins(store, "2026-01-02") == []
        # Simulate an older stored version of a built-in: the next sync archives it.
        store.execute("UPDATE strategies SET code = 'old', code_hash = 'old', version = 0 WHERE name = 'ema_cross'")
        assert registry.sync_builtins(store, "2026-01-03") == ["ema_cross@1"]
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
