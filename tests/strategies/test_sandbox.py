"""The sandbox: separate process, scrubbed environment, limits, re-validated output.

Some tests pass `check_static=False` on purpose: they show the sandbox holding as the
second line of defence when code that the static check would refuse gets through.
"""
from __future__ import annotations

import json
import os
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import DataValidationError, StrategyRejected
from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources
from blofin_pipeline.strategies.sandbox import (
    _interpret,
    _load_signals,
    run_in_sandbox,
    run_strategy_in_sandbox,
    sandbox_env,
)
from blofin_pipeline.strategies.testdata import check_candles

CANDLES = check_candles(300)


def strategy_code(body: str, *, imports: str = "") -> str:
    head = "import numpy as np\nimport pandas as pd\n" + imports + textwrap.dedent('''
        from blofin_pipeline.strategies import Strategy


        class Probe(Strategy):
            name = "probe"
            category = "volatility"
            params = {"n": 3}
            param_space = {"n": (1, 10)}

            def generate_signals(self, candles):
    ''')
    return head + textwrap.indent(textwrap.dedent(body), " " * 8)


def test_clean_strategy_gives_the_same_signals_as_in_process():
    code = builtin_strategy_sources()["roc_momentum"]
    params = {"window": 5, "threshold": 0.001}
    got = run_in_sandbox(code, CANDLES, params, timeout=30)
    expected = builtin_strategies()["roc_momentum"](params).signals(CANDLES)
    pd.testing.assert_series_equal(got, expected)


def test_result_carries_name_category_and_effective_params():
    result = run_strategy_in_sandbox(strategy_code("return candles['close'] * 0.0"),
                                     CANDLES, {"n": 4}, timeout=30)
    assert (result.name, result.category, result.params) == ("probe", "volatility", {"n": 4})
    assert result.lookahead is None and result.seconds > 0


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


def test_child_runs_in_another_process_and_its_group_is_killed(tmp_path):
    # Spawns a grandchild that would outlive the strategy, and reports both pids through
    # the signals (pid / 2**22 fits in [0, 1]).
    code = strategy_code('''
        child = subprocess.Popen(["sleep", "60"])
        out = pd.Series(0.0, index=candles.index)
        out.iloc[0] = os.getpid() / 2**22
        out.iloc[1] = child.pid / 2**22
        return out
    ''', imports="import os\nimport subprocess\n")
    got = run_in_sandbox(code, CANDLES, check_static=False, timeout=30)
    child_pid, grandchild_pid = (int(round(v * 2**22)) for v in got.iloc[:2])
    assert child_pid != os.getpid()
    for _ in range(200):  # the orphan is reaped by init shortly after SIGKILL
        try:
            os.kill(grandchild_pid, 0)
        except ProcessLookupError:
            break
        try:
            with open(f"/proc/{grandchild_pid}/stat") as fh:
                if fh.read().split(")")[-1].split()[0] == "Z":  # killed, not yet reaped
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {grandchild_pid} survived the sandbox")


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


def test_exception_reason_has_the_traceback_tail():
    code = strategy_code("return candles['close'] * undefined_name")
    with pytest.raises(StrategyRejected) as info:
        run_in_sandbox(code, CANDLES, timeout=30)
    assert "NameError" in info.value.reasons[0] and "undefined_name" in info.value.reasons[0]


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


# --- the parent never trusts what the child wrote ----------------------------------
@pytest.mark.parametrize("values, message", [
    (np.full(len(CANDLES), np.nan), "NaN on every bar"),
    (np.full(len(CANDLES), 3.0), r"outside \[-1, 1\]"),
    (np.zeros(len(CANDLES) - 1), r"shape \(299,\) for 300 candles"),
    (np.zeros((len(CANDLES), 2)), "shape"),
    (np.zeros(len(CANDLES), dtype=np.int64), "dtype int64"),
    (np.array([object()] * len(CANDLES), dtype=object), "unreadable"),
])
def test_parent_revalidates_the_signals_file(tmp_path, values, message):
    path = tmp_path / "signals.npy"
    np.save(path, values, allow_pickle=True)
    with pytest.raises(StrategyRejected, match=message):
        _load_signals(path, CANDLES, "probe")


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", "x" * 10])
def test_garbage_result_file_is_a_crash(tmp_path, content):
    (tmp_path / "result.json").write_text(content)
    (tmp_path / "stderr.log").write_text("something went wrong")
    with pytest.raises(StrategyRejected, match="crashed without a result.*something went wrong"):
        _interpret(0, tmp_path, "probe", 20, 1024)


def test_child_error_kinds_map_to_reasons(tmp_path):
    (tmp_path / "stderr.log").write_text("")
    cases = {
        "memory": "exceeded the memory limit of 1024 MB",
        "strategy": "boom",
        "crash": "crashed: boom; traceback tail: tb",
    }
    for kind, expected in cases.items():
        (tmp_path / "result.json").write_text(json.dumps(
            {"status": "error", "kind": kind, "message": "boom", "traceback": "tb",
             "name": "probe"}))
        with pytest.raises(StrategyRejected, match=expected.replace("(", r"\(")):
            _interpret(0, tmp_path, "probe", 20, 1024)
