"""The sandbox: a locked-down child per strategy, limits, numbers only, re-validated output.

Many tests pass `check_static=False` on purpose: they show what the kernel holds by
itself when code that the static check would refuse gets through.
"""
from __future__ import annotations

import gc
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import DataValidationError, StrategyError, StrategyRejected
from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources
from blofin_pipeline.strategies.base import check_signal_values
from blofin_pipeline.strategies import runner
from blofin_pipeline.strategies.runner import SandboxedStrategy, run_in_sandbox
from blofin_pipeline.strategies.sandbox import (
    SandboxLimits,
    SandboxSession,
    fork_server,
    sandbox_env,
)
from blofin_pipeline.strategies.testdata import check_candles

CANDLES = check_candles(300)


def strategy_code(body: str, *, imports: str = "", name: str = "probe") -> str:
    head = "import numpy as np\nimport pandas as pd\n" + imports + textwrap.dedent(f'''
        from blofin_pipeline.strategies import Strategy


        class Probe(Strategy):
            name = "{name}"
            category = "volatility"
            params = {{"n": 3}}
            param_space = {{"n": (1, 10)}}

            def generate_signals(self, candles):
    ''')
    return head + textwrap.indent(textwrap.dedent(body), " " * 8)


def test_clean_strategy_gives_the_same_signals_as_in_process():
    code = builtin_strategy_sources()["roc_momentum"]
    params = {"window": 5, "threshold": 0.001}
    got = run_in_sandbox(code, CANDLES, params, timeout=30)
    expected = builtin_strategies()["roc_momentum"](params).signals(CANDLES)
    pd.testing.assert_series_equal(got, expected)


def test_sandboxed_function_describes_the_strategy_from_the_child():
    with SandboxedStrategy(strategy_code("return candles['close'] * 0.0"),
                           origin="user") as fn:
        assert (fn.name, fn.category, fn.params, fn.param_space) == (
            "probe", "volatility", {"n": 3}, {"n": (1, 10)})
        assert fn.sandboxed is True
        assert (fn(CANDLES, {"n": 4}) == 0.0).all()


def test_bad_params_are_rejected_from_the_child():
    with pytest.raises(StrategyRejected, match=r"'n'=99 outside its range"):
        run_in_sandbox(strategy_code("return candles['close'] * 0.0"), CANDLES, {"n": 99})


def test_static_violations_are_refused_before_any_process_starts():
    with pytest.raises(StrategyRejected) as info:
        run_in_sandbox(strategy_code("return os.getpid()", imports="import os\n"), CANDLES)
    assert info.value.name == "probe"
    assert any("import of 'os' is not allowed" in r for r in info.value.reasons)


def test_child_environment_holds_no_secrets(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", "anthropic://:sk-ant-secret@")
    monkeypatch.setenv("BLOFIN_API_SECRET", "hunter2")
    env = sandbox_env()
    assert not any("ANTHROPIC" in k or k.startswith("AIRFLOW") or "SECRET" in k for k in env)
    assert "sk-ant-secret" not in " ".join(env.values())
    # And from inside: the child sees none of them (os let through on purpose).
    code = strategy_code('''
        leaked = any(("ANTHROPIC" in k or "AIRFLOW" in k or "SECRET" in k) for k in os.environ)
        return pd.Series(1.0 if leaked else -1.0, index=candles.index)
    ''', imports="import os\n")
    got = run_in_sandbox(code, CANDLES, check_static=False, timeout=30)
    assert (got == -1.0).all()


def test_each_call_runs_a_fresh_module_so_no_state_survives_between_calls():
    code = strategy_code('''
        SEEN.append(len(candles))
        return pd.Series(min(len(SEEN), 9) / 10, index=candles.index)
    ''').replace("class Probe", "SEEN = []\n\n\nclass Probe")
    with SandboxedStrategy(code, origin="user") as fn:
        assert [float(fn(CANDLES).iloc[0]) for _ in range(3)] == [0.1, 0.1, 0.1]


def test_child_is_another_process_and_serves_many_calls():
    code = strategy_code('''
        return pd.Series(os.getpid() / 2**22, index=candles.index)
    ''', imports="import os\n")
    with SandboxedStrategy(code, origin="user") as fn:
        pids = {int(round(fn.raw(CANDLES).iloc[0] * 2**22)) for _ in range(3)}
    assert len(pids) == 1 and os.getpid() not in pids and fork_server().pid not in pids


def test_a_forgotten_sandboxed_function_ends_its_child():
    fn = SandboxedStrategy(strategy_code("return candles['close'] * 0.0"), origin="user")
    pid = fn._session.pid
    del fn
    gc.collect()
    with SandboxedStrategy(strategy_code("return candles['close'] * 0.0"), origin="user"):
        assert not Path(f"/proc/{pid}").exists()  # reaped with the next request


def test_at_most_max_open_children_and_an_evicted_one_comes_back():
    code = strategy_code("return candles['close'] * 0.0")
    fns = [SandboxedStrategy(code, origin="user") for _ in range(runner.MAX_OPEN_SANDBOXES + 2)]
    try:
        live = [fn for fn in fns if fn._session is not None and not fn._session.dead]
        assert len(live) == runner.MAX_OPEN_SANDBOXES
        assert fns[0]._session is None
        assert (fns[0](CANDLES) == 0.0).all()
    finally:
        for fn in fns:
            fn.close()


def test_wall_clock_timeout_kills_the_child():
    code = strategy_code('''
        i = 0
        while i >= 0:
            i += 1
    ''')
    with pytest.raises(StrategyRejected, match=r"timed out after 1 s \(wall clock\)"):
        run_in_sandbox(code, CANDLES, timeout=1, cpu_seconds=60)


def test_sleeping_child_is_caught_by_the_wall_clock_not_the_cpu_limit():
    code = strategy_code('''
        time.sleep(30)
        return candles["close"] * 0.0
    ''', imports="import time\n")
    with pytest.raises(StrategyRejected, match="timed out after 1 s"):
        run_in_sandbox(code, CANDLES, timeout=1, cpu_seconds=60, check_static=False)


def test_cpu_limit():
    code = strategy_code('''
        total = 0
        for i in range(10**12):
            total += i
    ''')
    with pytest.raises(StrategyRejected, match="exceeded the CPU time limit of 1 s"):
        run_in_sandbox(code, CANDLES, timeout=60, cpu_seconds=1)


def test_cpu_limit_is_per_call_and_a_new_child_follows_a_killed_one():
    code = strategy_code('''
        if self.params["n"] == 9:
            total = 0
            for i in range(10**12):
                total += i
        return candles["close"] * 0.0
    ''')
    limits = SandboxLimits(call_timeout=60, call_cpu_seconds=1)
    with SandboxedStrategy(code, origin="user", limits=limits) as fn:
        assert (fn(CANDLES) == 0.0).all()
        with pytest.raises(StrategyError, match="exceeded the CPU time limit of 1 s"):
            fn(CANDLES, {"n": 9})
        assert (fn(CANDLES) == 0.0).all()  # served by a fresh child


def test_memory_limit():
    code = strategy_code("return candles['close'] * 0.0 + np.ones((100_000, 100_000))[0, 0]")
    with pytest.raises(StrategyRejected, match="exceeded the memory limit of 400 MB"):
        run_in_sandbox(code, CANDLES, memory_mb=400, timeout=30)


def test_crash_by_signal_is_reported_with_its_name():
    code = strategy_code('''
        os.kill(os.getpid(), signal.SIGSEGV)
    ''', imports="import os\nimport signal\n")
    with pytest.raises(StrategyRejected, match="crashed: killed by signal SIGSEGV"):
        run_in_sandbox(code, CANDLES, check_static=False, timeout=30)


def test_system_exit_is_a_strategy_failure_not_an_exit():
    code = strategy_code("raise SystemExit(3)")
    with pytest.raises(StrategyRejected, match="failed in generate_signals: SystemExit: 3"):
        run_in_sandbox(code, CANDLES, check_static=False, timeout=30)
    with pytest.raises(StrategyRejected, match="crashed: KeyboardInterrupt"):
        run_in_sandbox(strategy_code("raise KeyboardInterrupt"), CANDLES,
                       check_static=False, timeout=30)


def test_exception_reason_names_type_message_and_line():
    code = strategy_code("return candles['close'] * undefined_name")
    with pytest.raises(StrategyRejected) as info:
        run_in_sandbox(code, CANDLES, timeout=30)
    reason = info.value.reasons[0]
    assert "NameError" in reason and "undefined_name" in reason
    line = code.splitlines().index("        return candles['close'] * undefined_name") + 1
    assert f"(line {line})" in reason


def test_strategy_prints_do_not_break_the_protocol():
    code = strategy_code('''
        for _ in range(20000):
            print("noise " * 20)
        return np.sign(candles["close"].diff()).fillna(0.0)
    ''')
    got = run_in_sandbox(code, CANDLES, timeout=30)
    assert len(got) == len(CANDLES)


def test_candles_are_checked_before_spawning():
    with pytest.raises(DataValidationError, match="lack column"):
        run_in_sandbox(strategy_code("return candles['close']"), CANDLES.drop(columns="volume"))


def test_candles_arrive_unchanged_index_time_zone_and_values():
    frame = CANDLES.copy()
    frame.index = frame.index.tz_convert("Asia/Tokyo").as_unit("us")
    code = strategy_code('''
        ok = (str(candles.index.tz) == "Asia/Tokyo" and candles.index.unit == "us"
              and list(candles.columns) == ["open", "high", "low", "close", "volume"])
        return (candles["close"] - candles["open"]) * 0.0 + (0.5 if ok else -0.5)
    ''')
    with SandboxedStrategy(code, origin="user") as fn:
        got = fn.raw(frame)
    assert got.index.equals(frame.index) and (got == 0.5).all()


def test_candles_are_sent_once_per_window_yet_every_call_sees_the_caller_s_data():
    code = strategy_code('''
        out = candles["close"] / candles["close"].iloc[0] - 1.0
        candles.iloc[:, :] = 0.0   # vandalise its own copy
        return out.clip(-1, 1)
    ''')
    frame = CANDLES.copy()
    expected = (frame["close"] / frame["close"].iloc[0] - 1.0).clip(-1, 1)
    with SandboxedStrategy(code, origin="user") as fn:
        first = fn(frame)
        assert fn._session._sent is not None
        again = fn(frame, {"n": 5})      # same candles: only the parameters travel
        pd.testing.assert_series_equal(first, again)
        pd.testing.assert_series_equal(first, expected, check_names=False)
        frame.loc[frame.index[0], "close"] *= 2   # changed in place: sent again
        changed = fn(frame)
        pd.testing.assert_series_equal(
            changed, (frame["close"] / frame["close"].iloc[0] - 1.0).clip(-1, 1),
            check_names=False)
        shorter = fn(frame.iloc[:100])
        assert len(shorter) == 100


# --- the parent never trusts what the child answers -----------------------------------
@pytest.mark.parametrize("values, message", [
    (np.full(len(CANDLES), np.nan), "NaN on every bar"),
    (np.full(len(CANDLES), 3.0), r"outside \[-1, 1\]"),
    (np.zeros(len(CANDLES) - 1), r"shape \(299,\) for 300 candles"),
    (np.zeros(len(CANDLES), dtype=np.int64), "dtype int64"),
])
def test_parent_revalidates_the_values(values, message):
    with pytest.raises(StrategyError, match=message):
        check_signal_values(values, CANDLES, "probe")


FORGE = '''
        import os, struct, json
        head = json.dumps(HEADER).encode()
        payload = PAYLOAD
        os.write(4, b"BFS1" + struct.pack("<IQ", len(head), len(payload)) + head + payload)
        os._exit(0)
'''


@pytest.mark.parametrize("header, payload, message", [
    ({"ok": True, "arrays": [["values", "f8", 300]]}, "b'\\x00\\x00\\x00\\x00\\x00\\x00\\x08@' * 300",
     r"returned 3.0 at bar 0 .* outside \[-1, 1\]"),
    ({"ok": True, "arrays": [["values", "f8", 10]]}, "b'\\x00' * 80", "no float64 value per candle"),
    ({"ok": True, "arrays": [["values", "O", 300]]}, "b'\\x00' * 2400", "broke the sandbox protocol"),
    ({"ok": True}, "b'\\x00' * (1 << 21)", "broke the sandbox protocol"),
])
def test_forged_answers_from_a_hostile_child_are_refused(header, payload, message):
    code = strategy_code(FORGE.replace("HEADER", repr(header)).replace("PAYLOAD", payload))
    with SandboxedStrategy(code, origin="user") as fn:
        with pytest.raises(StrategyError, match=message):
            fn(CANDLES)


def test_failure_kinds_become_sanitised_reasons():
    session = object.__new__(SandboxSession)
    session.name, session.limits = "probe", SandboxLimits(memory_mb=512)
    secret = "sk-ant-api03-" + "A1b2" * 12
    cases = {
        "memory": "strategy 'probe' exceeded the memory limit of 512 MB (MemoryError: boom",
        "strategy": "boom",
        "crash": "strategy 'probe' crashed: KeyboardInterrupt: boom",
        "error": "strategy 'probe' failed: ValueError: boom",
        "nonsense": "broke the sandbox protocol",
    }
    for kind, expected in cases.items():
        reason = session._failure_reason({"kind": kind, "type": {"memory": "MemoryError",
                                          "crash": "KeyboardInterrupt"}.get(kind, "ValueError"),
                                          "message": f"boom {secret}\n" + "x" * 5000,
                                          "line": 7})
        assert expected in reason
        assert secret not in reason and "\n" not in reason and len(reason) < 700
