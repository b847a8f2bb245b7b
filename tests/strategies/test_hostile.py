"""The hostile corpus (corpus/hostile_*.py): the attacks of issue 10, against the sandbox.

Each file starts with ``# expect:`` (the verdict with the static check, checked by
test_corpus), ``# kernel:`` (the verdict with the static check switched off: what the
kernel sandbox alone holds) and ``# hostile:`` (the harm it does when it is NOT
sandboxed: a marker file, a connection to a listener, stolen text, a surviving
process, a killed process). Placeholders such as ``{{MARKER}}`` are filled per test.

Every test asserts, besides the verdict: no marker file, no connection reached the
listener, no survivor process, the victim process alive, and neither the canary secret
(set as Airflow's Anthropic connection in this process's environment) nor any stolen
text in the report, the log or an error message. `test_the_corpus_does_harm_unsandboxed`
shows each file really does its harm outside the sandbox, so none of this can pass by
accident.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from blofin_pipeline.exceptions import PipelineError, StrategyError
from blofin_pipeline.backtest.walkforward import walk_forward
from blofin_pipeline.strategies.checks import check_strategy
from blofin_pipeline.strategies.runner import signal_function
from blofin_pipeline.strategies.testdata import check_candles

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
HOSTILE = sorted(CORPUS.glob("hostile_*.py"))
CANDLES = check_candles(400)
STOLEN_SIGNS = ("root:x:0:0", "PATH=", "AIRFLOW_CONN", "PYTHONPATH")


def headers(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines()[:4]:
        for key in ("expect", "kernel", "hostile"):
            if line.startswith(f"# {key}:"):
                out[key] = line.split(":", 1)[1].strip()
    return out


class Listener:
    """A TCP listener on 127.0.0.1 that counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class _EvilPickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class Traps:
    root: Path
    listener: Listener
    victim: subprocess.Popen
    canary: str
    survivor: str = field(default_factory=lambda: f"4{uuid.uuid4().int % 10**6}.{os.getpid()}")

    def code(self, path: Path, *, pid: str | None = None) -> str:
        values = {
            "MARKER": str(self.root / f"{path.stem}.marker"),
            "PICKLE": str(self.root / "evil.pkl"),
            "PORT": str(self.listener.port),
            "PID": pid or str(os.getpid()),
            "SURVIVOR": self.survivor,
            "VICTIM": str(self.victim.pid),
        }
        code = path.read_text()
        for key, value in values.items():
            code = code.replace("{{" + key + "}}", value)
        return code

    def survivors(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if self.survivor.encode() in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    pass
        return found

    def assert_no_harm(self, *texts: str) -> None:
        assert sorted(p.name for p in self.root.glob("*.marker")) == []
        assert self.listener.connections == 0
        assert self.survivors() == []
        assert self.victim.poll() is None, "the victim process was killed"
        for text in texts:
            assert self.canary not in text
            for sign in STOLEN_SIGNS:
                assert sign not in text, f"{sign!r} leaked: {text[:500]}"


@pytest.fixture
def traps(tmp_path, monkeypatch):
    canary = "sk-ant-api03-CANARY" + uuid.uuid4().hex
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", f"anthropic://:{canary}@")
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary)
    root = tmp_path / "traps"
    root.mkdir()
    with open(root / "evil.pkl", "wb") as fh:
        pickle.dump(_EvilPickle(root / "hostile_read_pickle.marker"), fh)
    listener = Listener()
    victim = subprocess.Popen(["sleep", "300"])
    traps = Traps(root, listener, victim, canary)
    yield traps
    victim.kill()
    victim.wait()
    listener.close()
    for pid in traps.survivors():
        os.kill(pid, signal.SIGKILL)


def test_the_corpus_covers_every_attack_of_the_issue():
    names = {p.stem.removeprefix("hostile_") for p in HOSTILE}
    assert names >= {"agg_eval_system", "apply_to_pickle", "read_pickle", "urlopen",
                     "openfile_passwd", "openfile_environ", "setsid_survivor", "airflow_env",
                     "fork", "exec", "socket", "kill_parent"}
    for path in HOSTILE:
        assert set(headers(path)) == {"expect", "kernel", "hostile"}, path.name


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_the_kernel_alone_holds(path, traps, caplog):
    """check-strategy --skip-static: no static check, only the sandbox stands."""
    caplog.set_level("DEBUG")
    report = check_strategy(traps.code(path), check_candles(), origin=path.name, timeout=30,
                            skip_static=True)  # the gate's frame: long enough for its dense checks
    expected = headers(path)["kernel"]
    if expected == "accepted":
        assert report.accepted, report.reasons
    else:
        stage, text = (part.strip() for part in expected.split(":", 1))
        assert not report.accepted
        assert report.stages["static"]["status"] == "skipped"
        assert any(r.startswith(f"{stage}: ") and text in r for r in report.reasons), report.reasons
    traps.assert_no_harm(json.dumps(report.to_dict()), caplog.text)


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_scoring_runs_hostile_code_only_in_the_sandbox(path, traps, caplog):
    """What scoring does with a registered strategy: walk-forward over parameter sets,
    with the worker's secrets in its environment (set by the fixture)."""
    caplog.set_level("DEBUG")
    errors = []
    try:
        with signal_function(traps.code(path), origin="user", label=path.stem) as fn:
            assert fn.sandboxed
            walk_forward(CANDLES, fn, fn.params, fn.param_space, n_folds=2, n_candidates=2)
    except PipelineError as err:
        errors.append(str(err))
    if headers(path)["kernel"] == "accepted":
        assert errors == []  # harmless in the sandbox: it never sees Airflow's environment
    else:
        assert errors, "a hostile strategy was scored"
    traps.assert_no_harm(*errors, caplog.text)


def test_a_registry_row_claiming_to_be_builtin_is_still_sandboxed(traps):
    fn = signal_function(traps.code(CORPUS / "hostile_fork.py"), origin="builtin")
    with fn:
        assert fn.sandboxed
        with pytest.raises(StrategyError, match="forbidden system call"):
            fn(CANDLES)
        with pytest.raises(StrategyError, match="forbidden system call"):
            fn(CANDLES)  # hostile once, refused for good: no new child is started
    traps.assert_no_harm()


def _eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


CONTROL = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    from blofin_pipeline.strategies import load_strategy_source
    from blofin_pipeline.strategies.testdata import check_candles

    candles = check_candles(300)
    out = Path(sys.argv[2])
    for stem, code in json.loads(Path(sys.argv[1]).read_text()).items():
        pid = os.fork()
        if pid == 0:
            try:
                load_strategy_source(code, origin=stem)().generate_signals(candles)
                message = "no error"
            except BaseException as err:
                message = f"{type(err).__name__}: {err}"
            (out / f"{stem}.out").write_text(message)
            os._exit(0)
        os.waitpid(pid, 0)
''')


def test_the_corpus_does_harm_unsandboxed(traps, tmp_path):
    """The control: the same files, loaded in an ordinary process (as the pipeline did
    before the sandbox) with Airflow's connection in its environment, do their harm."""
    codes = {p.stem: traps.code(p, pid="self") for p in HOSTILE}
    (tmp_path / "codes.json").write_text(json.dumps(codes))
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # AIRFLOW_CONN_* with the canary included
    subprocess.run([sys.executable, "-c", CONTROL, str(tmp_path / "codes.json"),
                    str(traps.root)], env=env, timeout=120, check=True, cwd=tmp_path)
    for path in HOSTILE:
        harm = headers(path)["hostile"]
        if harm == "marker":  # a forked grandchild may still be writing it
            marker = traps.root / f"{path.stem}.marker"
            assert _eventually(marker.exists), path.stem
        elif harm == "stolen":
            said = (traps.root / f"{path.stem}.out").read_text()
            assert "root:x:0:0" in said or traps.canary in said, path.stem
    assert _eventually(lambda: traps.listener.connections == 2)  # urlopen and socket
    assert traps.survivors(), "the setsid grandchild should have survived"
    traps.victim.wait(timeout=10)
    assert traps.victim.returncode == -signal.SIGTERM


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blofin_pipeline", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=dict(os.environ))


@pytest.mark.parametrize("stem", ["hostile_agg_eval_system", "hostile_openfile_environ"])
def test_check_strategy_cli_rejects_with_and_without_the_static_check(stem, traps, tmp_path):
    source = tmp_path / f"{stem}.py"
    source.write_text(traps.code(CORPUS / f"{stem}.py"))
    with_static = cli("check-strategy", str(source))
    assert with_static.returncode == 1 and "static: " in with_static.stdout
    kernel_only = cli("check-strategy", "--skip-static", "--json", str(source))
    assert kernel_only.returncode == 1, kernel_only.stderr
    report = json.loads(kernel_only.stdout)
    assert report["stages"]["static"]["status"] == "skipped"
    assert report["stages"]["sandbox"]["status"] == "failed"
    traps.assert_no_harm(with_static.stdout + with_static.stderr,
                         kernel_only.stdout + kernel_only.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_check_strategy_cli_on_the_whole_corpus(path, traps, tmp_path):
    source = tmp_path / path.name
    source.write_text(traps.code(path))
    head = headers(path)
    with_static = cli("check-strategy", str(source))
    assert with_static.returncode == 1 and "static: " in with_static.stdout
    kernel_only = cli("check-strategy", "--skip-static", str(source))
    assert kernel_only.returncode == (0 if head["kernel"] == "accepted" else 1), kernel_only.stdout
    if head["kernel"] != "accepted":
        assert head["kernel"].split(":", 1)[1].strip() in kernel_only.stdout
    traps.assert_no_harm(with_static.stdout + with_static.stderr,
                         kernel_only.stdout + kernel_only.stderr)
