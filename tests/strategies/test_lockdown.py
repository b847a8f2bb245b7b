"""The kernel mechanisms behind the sandbox: in force, inherited, failing closed.

Some tests run a small pipeline in a subprocess under an extra seccomp filter, the way a
container runtime would: one that refuses Landlock (as Docker before 23.0 did, or a
kernel without it) must make the sandbox refuse to run anything; one that refuses
namespaces (as Docker's default profile does) must change nothing, because the sandbox
uses none.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from blofin_pipeline.exceptions import SandboxUnavailable
from blofin_pipeline.strategies import landlock, lockdown
from blofin_pipeline.strategies.runner import SandboxedStrategy
from blofin_pipeline.strategies.sandbox import fork_server
from blofin_pipeline.strategies.testdata import check_candles

ROOT = Path(__file__).resolve().parents[2]
CANDLES = check_candles(200)
SLEEPER = textwrap.dedent('''
    import time
    import pandas as pd
    from blofin_pipeline.strategies import Strategy


    class Sleeper(Strategy):
        name = "sleeper"
        category = "trend"

        def generate_signals(self, candles):
            time.sleep(float(len(candles)) / 10)
            return candles["close"] * 0.0
''')


def status_of(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_this_machine_offers_what_the_sandbox_needs():
    support = lockdown.probe()
    assert support.ok, (support.landlock_problem, support.seccomp_problem)
    assert support.landlock_abi >= 1


def test_server_and_child_run_locked_down():
    server = fork_server()
    fields = status_of(server.pid)
    assert fields["NoNewPrivs"] == "1"
    assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == int(fields["CapBnd"], 16) == 0
    assert server.landlock_abi == landlock.landlock_abi()
    assert "AIRFLOW" not in Path(f"/proc/{server.pid}/environ").read_bytes().decode()
    with SandboxedStrategy(SLEEPER, origin="user") as fn:
        child = fn._session.pid
        fields = status_of(child)
        assert fields["Seccomp"] == "2" and fields["NoNewPrivs"] == "1"
        assert int(fields["CapEff"], 16) == 0
        assert fields["PPid"] == str(server.pid)
        # Only the two pipes and /dev/null are open in the child.
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{child}/fd"))
        assert fds == [0, 1, 2, 3, 4]
        limits = Path(f"/proc/{child}/limits").read_text()
        assert "Max file size             0" in limits
    assert not Path(f"/proc/{child}").exists() or status_of(child)["State"].startswith("Z")


def test_allowed_read_paths_leave_out_home_workspace_and_proc():
    paths = landlock.allowed_read_paths()
    for forbidden in ("/", "/proc", "/etc", "/tmp", str(Path.home()), str(ROOT),
                      str(ROOT / "workspace")):
        assert forbidden not in paths
    assert str(ROOT / "blofin_pipeline") in paths


def test_missing_libseccomp_fails_closed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails as without libseccomp
    with pytest.raises(SandboxUnavailable, match="seccomp is unavailable"):
        lockdown.check_seccomp()


UNDER_FILTER = textwrap.dedent('''
    import errno, json, sys
    import pyseccomp as sc
    from blofin_pipeline.strategies import landlock, lockdown

    mode = sys.argv[1]
    lockdown.set_no_new_privs()
    f = sc.SyscallFilter(sc.ALLOW)
    if mode in ("no-landlock", "landlock-eperm"):
        code = errno.ENOSYS if mode == "no-landlock" else errno.EPERM
        for nr in (444, 445, 446):
            f.add_rule(sc.ERRNO(code), nr)
    else:  # like Docker's default profile: no namespaces, no mounts
        for name in ("unshare", "setns", "mount", "pivot_root"):
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        for flag in lockdown.CLONE_NAMESPACE_FLAGS:
            f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.load()

    from blofin_pipeline.exceptions import SandboxUnavailable, StrategyError
    from blofin_pipeline.strategies.runner import SandboxedStrategy
    from blofin_pipeline.strategies.testdata import check_candles
    out = {}
    try:
        with SandboxedStrategy(sys.stdin.read(), origin="user") as fn:
            out["positions"] = float(fn(check_candles(200)).abs().sum())
            try:
                fn.raw(check_candles(201))
            except StrategyError as err:
                out["second_call"] = str(err)
    except SandboxUnavailable as err:
        out["unavailable"] = str(err)
    print(json.dumps(out))
''')

FORKER = textwrap.dedent('''
    import os
    from blofin_pipeline.strategies import Strategy


    class Forker(Strategy):
        name = "forker"
        category = "trend"

        def generate_signals(self, candles):
            if len(candles) > 200:
                os.fork()
            return candles["close"].diff().fillna(0.0).clip(-1, 1)
''')


def run_under_filter(mode: str) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", UNDER_FILTER, mode], input=FORKER,
                          capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode, why", [
    ("no-landlock", "the kernel has no Landlock"),
    ("landlock-eperm", "a seccomp profile refuses the Landlock syscalls"),
])
def test_without_landlock_the_sandbox_fails_closed(mode, why):
    out = run_under_filter(mode)
    assert "positions" not in out
    assert "could not lock itself down, so untrusted strategy code will not run" in out["unavailable"]
    assert why in out["unavailable"]


def test_a_profile_refusing_namespaces_changes_nothing():
    out = run_under_filter("docker-like")
    assert "unavailable" not in out
    assert out["positions"] > 0
    assert "forbidden system call" in out["second_call"]


KILLED_PIPELINE = textwrap.dedent('''
    import sys, threading
    from blofin_pipeline.strategies.runner import SandboxedStrategy
    from blofin_pipeline.strategies.testdata import check_candles
    fn = SandboxedStrategy(sys.stdin.read(), origin="user")
    print(fn._session._server.pid, fn._session.pid, flush=True)
    fn(check_candles(3000))   # sleeps 300 s in the child
''')


def test_killing_the_pipeline_leaves_no_sandbox_process_behind():
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PIPELINE], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    proc.stdin.write(SLEEPER)
    proc.stdin.close()
    server, child = (int(x) for x in proc.stdout.readline().split())
    time.sleep(0.5)
    assert Path(f"/proc/{child}").exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alive = [pid for pid in (server, child) if _alive(pid)]
        if not alive:
            break
        time.sleep(0.1)
    assert alive == []


def _alive(pid: int) -> bool:
    try:
        return not status_of(pid)["State"].startswith("Z")
    except FileNotFoundError:
        return False
