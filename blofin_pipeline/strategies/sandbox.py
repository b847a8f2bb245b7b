"""The pipeline's side of the strategy sandbox: a fork server and one child per strategy.

`ForkServer` starts ``python -m blofin_pipeline.strategies.forkserver`` once per
process, with a scrubbed environment (an allow-list: no API keys, no Airflow
connections, no database URL), and keeps it for the life of the process. The server
has imported numpy and pandas and locked itself down (see `lockdown`); for each
`SandboxSession` it forks a child, which locks itself down further and then serves one
strategy over two pipes that the pipeline created (the server never sees a request or
an answer). A session's calls send candles and parameters and get back float64 values:
framed JSON and raw arrays, never a pickle (`_wire`).

Everything that comes back is bounded, parsed strictly and sanitised; a wall-clock
timeout kills the child (SIGKILL: it cannot have created any process, so nothing
survives); how a child died (SIGXCPU, SIGSYS from seccomp, SIGKILL...) becomes a clear
reason. If the sandbox cannot be set up, `SandboxUnavailable` is raised: untrusted code
never runs unconfined instead.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import SandboxUnavailable, StrategyError
from blofin_pipeline.strategies import _wire
from blofin_pipeline.strategies.prefixes import check_cuts, output_size
from blofin_pipeline.strategies.sanitize import describe_error, safe_name, safe_reason, safe_text

log = logging.getLogger(__name__)

SERVER_MODULE = "blofin_pipeline.strategies.forkserver"
STARTUP_TIMEOUT = 120.0  # seconds for the server to import numpy/pandas on a busy machine
SERVER_TIMEOUT = 30.0    # for one spawn or reap request
# Environment variables the sandbox inherits; everything else (API keys,
# AIRFLOW_CONN_*, database URLs, ...) is dropped.
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# Keep numeric libraries single-threaded: threads multiply the address space.
ENV_FIXED = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
}
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
MAX_DESCRIPTION_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of a sandboxed strategy: per call, and for the child's whole life."""

    call_timeout: float = 30.0        # wall clock, per call (the child is killed after it)
    call_cpu_seconds: int = 20        # CPU time per call (SIGXCPU)
    memory_mb: int = 1024             # address space of the child, interpreter included
    session_cpu_seconds: int = 900    # CPU time over the child's life (then SIGKILL)
    load_timeout: float = 30.0        # compiling and describing the strategy


def sandbox_env() -> dict[str, str]:
    """The sandbox's environment: an allow-list of harmless variables plus fixed settings."""
    env = {key: os.environ[key] for key in ENV_ALLOW if key in os.environ}
    env.update(ENV_FIXED)
    env["PYTHONPATH"] = _PACKAGE_ROOT
    return env


class ForkServer:
    """The pre-started, locked-down process that forks one sandboxed child per session."""

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._lock = threading.Lock()
        self._sock = ours
        self._pending_reaps: list[int] = []
        self.owner_pid = os.getpid()
        # The server's own stderr (a crash before it could answer) goes to an unlinked
        # file, not to ours: it must not hold the worker's log pipe open.
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-m", SERVER_MODULE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, cwd="/", env=sandbox_env(),
                start_new_session=True, close_fds=True,
            )
        finally:
            theirs.close()
        started = time.monotonic()
        hello = self._receive(startup_timeout)
        if not hello.get("ok"):
            self.close()
            why = hello.get("error") or f"no answer from the fork server ({self._stderr_tail()})"
            raise SandboxUnavailable(
                "the strategy sandbox could not lock itself down, so untrusted strategy "
                f"code will not run: {why}")
        self.pid = int(hello["pid"])
        self.landlock_abi = int(hello["landlock_abi"])
        log.info("sandbox fork server %d ready in %.2f s (Landlock ABI %d)", self.pid,
                 time.monotonic() - started, self.landlock_abi)

    def _receive(self, timeout: float) -> dict[str, Any]:
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(64 * 1024)
        except (OSError, socket.timeout):
            data = b""
        if not data:
            return {}
        try:
            message = json.loads(data)
        except ValueError:
            return {}
        return message if isinstance(message, dict) else {}

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return "no output"
        return text.splitlines()[-1] if text else "no output"

    def alive(self) -> bool:
        return self.proc.poll() is None and os.getpid() == self.owner_pid

    def _request(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> dict[str, Any]:
        with self._lock:
            while self._pending_reaps:  # children closed by the garbage collector
                pid = self._pending_reaps.pop()
                socket.send_fds(self._sock, [json.dumps({"op": "reap", "pid": pid}).encode()], [])
                self._receive(SERVER_TIMEOUT)
            try:
                socket.send_fds(self._sock, [json.dumps(message).encode("utf-8")], list(fds))
            except OSError as err:
                raise SandboxUnavailable(f"the sandbox fork server is gone: {err}") from err
            answer = self._receive(SERVER_TIMEOUT)
        if not answer or "error" in answer:
            raise SandboxUnavailable(
                f"the sandbox fork server failed a {message.get('op')!r} request: "
                f"{answer.get('error') or 'no answer'}")
        return answer

    def spawn(self, limits: SandboxLimits) -> tuple[int, int, int]:
        """(pid, fd to write requests to, fd to read answers from) of a new child."""
        job_r, job_w = os.pipe()
        reply_r, reply_w = os.pipe()
        for fd in (job_w, reply_w):
            _widen_pipe(fd)
        try:
            answer = self._request({"op": "spawn", "limits": {
                "memory_mb": int(limits.memory_mb),
                "session_cpu_seconds": int(limits.session_cpu_seconds)}}, (job_r, reply_w))
        except BaseException:
            for fd in (job_w, reply_r):
                os.close(fd)
            raise
        finally:
            os.close(job_r)
            os.close(reply_w)
        return int(answer["pid"]), job_w, reply_r

    def reap(self, pid: int) -> dict[str, Any]:
        """Kill (if still running) and wait for a child; how it ended."""
        return self._request({"op": "reap", "pid": pid})

    def reap_later(self, pid: int) -> None:
        """Reap a child at the next request: safe from a finalizer, which may run in the
        middle of another request (the child has already been told to stop)."""
        self._pending_reaps.append(pid)

    def close(self) -> None:
        try:
            self._sock.close()
            self._stderr.close()
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _widen_pipe(fd: int) -> None:
    """A candles frame in one write: fewer hand-overs between the two processes."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
        pass


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server, started on first use (and again if it died)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            if _server is not None and os.getpid() == _server.owner_pid:
                _server.close()
            _server = ForkServer()
        return _server


def shutdown_fork_server() -> None:
    """Stop this process's fork server (and with it every child); started again on use."""
    global _server
    with _server_lock:
        if _server is not None and os.getpid() == _server.owner_pid:
            _server.close()
        _server = None


def _forget_server_in_forked_child() -> None:
    # A forked copy of the pipeline must not share (or keep alive) its parent's server.
    global _server
    if _server is not None:
        try:
            _server._sock.close()
        except OSError:
            pass
    _server = None


atexit.register(shutdown_fork_server)
os.register_at_fork(after_in_child=_forget_server_in_forked_child)


# --- one child -------------------------------------------------------------------------
class SandboxSession:
    """One locked-down child serving one strategy: `describe` once, `signals` per call.

    Raises StrategyError (with a sanitised, bounded sentence) when the strategy fails,
    breaks a limit or the protocol; the session is then `dead` if its child is gone.
    """

    def __init__(self, code: str, *, origin: str, label: str,
                 limits: SandboxLimits, server: ForkServer | None = None) -> None:
        self.limits = limits
        self.label = safe_name(label)
        self.name = self.label
        self.dead = False
        self.death: dict[str, Any] | None = None
        self._sent: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None
        self._server = server or fork_server()
        self.pid, self._to_child, self._from_child = self._server.spawn(limits)
        try:
            os.set_blocking(self._to_child, False)
            os.set_blocking(self._from_child, False)
            self.description = self._call({"op": "load", "code": code, "origin": origin}, {},
                                          limits.load_timeout, MAX_DESCRIPTION_BYTES,
                                          what="loading")[0]
        except BaseException:
            self.close()
            raise

    # -- calls ------------------------------------------------------------------------
    def signals(self, candles: pd.DataFrame, params: dict[str, Any] | None,
                timeout: float | None = None) -> np.ndarray:
        """Raw float64 values of generate_signals on `candles` (NaN kept)."""
        return self._candles_call(candles, {"op": "signals", "params": _wire.plain_params(params)},
                                  {}, len(candles), timeout or self.limits.call_timeout,
                                  self.limits.call_cpu_seconds, "generate_signals")

    def prefixes(self, candles: pd.DataFrame, params: dict[str, Any] | None, start: int,
                 cuts: np.ndarray, *, last_only: bool, timeout: float,
                 cpu_seconds: int) -> np.ndarray:
        """A lookahead batch in one request: the child runs the strategy on
        ``candles[start : t + 1]`` for every cut t (`prefixes.prefix_outputs`)."""
        cuts = check_cuts(len(candles), start, cuts)  # before the child sees them
        header = {"op": "prefixes", "params": _wire.plain_params(params), "start": int(start),
                  "last_only": bool(last_only)}
        return self._candles_call(candles, header, {"cuts": cuts},
                                  output_size(start, cuts, last_only=last_only), timeout,
                                  cpu_seconds, "the lookahead batch")

    def _candles_call(self, candles: pd.DataFrame, request: dict[str, Any],
                      extra: dict[str, np.ndarray], n_values: int, timeout: float,
                      cpu_seconds: int, what: str) -> np.ndarray:
        header, arrays = _wire.encode_candles(candles)
        if self._sent is not None and _wire.same_arrays(self._sent[1], arrays) \
                and self._sent[0] == header:
            # The child still holds these candles (walk-forward tries every parameter
            # set on the same window): send the parameters only.
            header = {"same_candles": True}
            arrays = {}
        else:
            self._sent = (dict(header), {k: v.copy() for k, v in arrays.items()})
        header.update(request, cpu_seconds=int(cpu_seconds))
        try:
            _, answer = self._call(header, {**arrays, **extra}, timeout, 8 * n_values + 1024,
                                   what=what)
        except StrategyError:
            self._sent = None  # resend next time: the child may not have kept them
            raise
        values = answer.get("values")
        if values is None or values.dtype != np.float64 or values.shape != (n_values,):
            raise StrategyError(f"strategy {self.name!r} broke the sandbox protocol: "
                                f"no float64 value per candle")
        return values

    def _call(self, header: dict[str, Any], arrays: dict[str, np.ndarray], timeout: float,
              max_payload: int, *, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.dead:
            raise StrategyError(f"strategy {self.name!r}: its sandbox was closed")
        deadline = time.monotonic() + timeout
        try:
            _wire.write_frame(self._to_child, _wire.encode(header, arrays), deadline)
            reply, answer = _wire.read_frame(self._from_child, max_payload=max_payload,
                                             deadline=deadline, max_header=64 * 1024)
        except _wire.WireTimeout:
            self.close()
            raise StrategyError(f"strategy {self.name!r} timed out after {timeout:g} s "
                                f"(wall clock) in {what}; the process was killed") from None
        except _wire.WireError as err:
            self.close()
            raise StrategyError(self._death_reason(what, err)) from None
        if reply.get("ok") is True:
            if what == "loading" and isinstance(reply.get("name"), str) and reply["name"]:
                self.name = safe_name(reply["name"])
            return reply, answer
        raise StrategyError(self._failure_reason(reply))

    def _failure_reason(self, reply: dict[str, Any]) -> str:
        kind = reply.get("kind")
        line = reply.get("line")
        where = f" (line {line})" if isinstance(line, int) and not isinstance(line, bool) else ""
        if kind == "memory":
            return (f"strategy {self.name!r} exceeded the memory limit of "
                    f"{self.limits.memory_mb} MB ({describe_error(reply.get('type'), reply.get('message'), 160)})")
        if kind == "strategy":  # our own contract's messages, repeated by the child
            return safe_reason(f"{safe_text(reply.get('message'))}{where}")
        if kind == "crash":
            return (f"strategy {self.name!r} crashed: "
                    f"{describe_error(reply.get('type'), reply.get('message'))}{where}")
        if kind == "error":
            return (f"strategy {self.name!r} failed: "
                    f"{describe_error(reply.get('type'), reply.get('message'))}{where}")
        return f"strategy {self.name!r} broke the sandbox protocol"

    def _death_reason(self, what: str, err: Exception) -> str:
        if not isinstance(err, _wire.WireClosed):  # we saw a bad answer and killed it
            return (f"strategy {self.name!r} broke the sandbox protocol in {what}: "
                    f"{safe_text(err, 120)}")
        status = self.death or {}
        sig = status.get("signal")
        name = self.name
        if sig == signal.SIGXCPU:
            return (f"strategy {name!r} exceeded the CPU time limit of "
                    f"{self.limits.call_cpu_seconds} s (killed by SIGXCPU)")
        if sig == signal.SIGSYS:
            return (f"strategy {name!r} was killed by the sandbox: it attempted a forbidden "
                    f"system call (process creation, exec, network or another process's "
                    f"memory) in {what}")
        if sig == signal.SIGKILL:
            return (f"strategy {name!r} was killed by SIGKILL (its CPU hard limit of "
                    f"{self.limits.session_cpu_seconds} s, or the machine out of memory)")
        if sig is not None:
            return f"strategy {name!r} crashed: killed by signal {_signal_name(sig)} in {what}"
        return (f"strategy {name!r} crashed without an answer in {what} "
                f"(exit code {status.get('exit_code', '?')})")

    def close(self, *, wait: bool = True) -> None:
        """Kill the child (if alive) and collect how it ended; `wait=False` (from a
        finalizer) only closes its pipes, which ends it, and reaps it later."""
        if self.dead:
            return
        self.dead = True
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if not wait:
            self._server.reap_later(self.pid)
            return
        try:
            self.death = self._server.reap(self.pid)
        except SandboxUnavailable:
            self.death = {}


def _signal_name(number: int) -> str:
    return {s.value: s.name for s in signal.Signals}.get(number, str(number))
