"""The fork server: ``python -m blofin_pipeline.strategies.forkserver FD``.

Started by the pipeline (`sandbox.ForkServer`) with a scrubbed environment, it imports
numpy, pandas and the strategy contract, warms them up on the built-in strategies, then
locks itself down for good (`lockdown.lock_server`: NO_NEW_PRIVS, no capabilities,
Landlock read-only) before it accepts any request. No strategy code ever runs in it.

It then serves the pipeline over the unix socket FD (SOCK_SEQPACKET, JSON messages):

* ``spawn`` (with two pipe fds passed along, SCM_RIGHTS): fork one child, which keeps
  only those pipes, locks itself down further (`lockdown.lock_child`: rlimits, seccomp)
  and serves one strategy (`_sandbox_child.serve`); answers ``{"pid": ...}``;
* ``reap``: SIGKILL the child (a no-op if it has exited), wait for it, answer how it
  ended. Children are reaped only on request, so their pid is never reused while the
  pipeline may still signal it.

When the pipeline goes away (end of file on the socket), every child is killed.
"""
from __future__ import annotations

import fcntl
import gc
import json
import os
import signal
import socket
import sys

MESSAGE_BYTES = 64 * 1024
CHILD_JOB_FD, CHILD_REPLY_FD = 3, 4
_devnull = -1  # opened before the lockdown, which leaves /dev unreadable
_read_paths: list[str] = []  # what the lockdown lets a sandboxed process read


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode("utf-8"))


def _warm_up() -> None:
    """Import and exercise what strategies use, once, so children start warm."""
    import math  # noqa: F401
    import statistics  # noqa: F401

    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyseccomp  # noqa: F401 - loads libseccomp (ctypes.util runs ldconfig) now

    from blofin_pipeline.strategies import _sandbox_child  # noqa: F401
    from blofin_pipeline.strategies.builtin import builtin_strategies
    from blofin_pipeline.strategies.testdata import check_candles

    candles = check_candles(300)
    for cls in builtin_strategies().values():
        cls().signals(candles)
    close = candles["close"]
    close.rolling(10).apply(lambda w: w[-1], raw=True)
    close.expanding().std()
    close.rank(pct=True)
    candles.resample("4h").last()
    numpy.polyfit(numpy.arange(10.0), numpy.arange(10.0), 1)


def _child(fds: list[int], limits: dict, server_pid: int) -> None:
    """In the forked child: keep only the two pipes, lock down, serve. Never returns."""
    code = 70
    try:
        from blofin_pipeline.strategies import _sandbox_child, lockdown

        # Move the pipes out of the way, then to 3 and 4; everything else is closed
        # (the server's socket included) and 0-2 point to /dev/null: strategy prints
        # go nowhere, and nothing the strategy writes reaches a log.
        job, reply, null = (fcntl.fcntl(fd, fcntl.F_DUPFD, CHILD_REPLY_FD + 1)
                            for fd in (*fds, _devnull))
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.dup2(job, CHILD_JOB_FD)
        os.dup2(reply, CHILD_REPLY_FD)
        os.closerange(CHILD_REPLY_FD + 1, 1 << 16)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        lockdown.lock_child(lockdown.ChildLimits(**limits), server_pid, _read_paths)
        code = _sandbox_child.serve(CHILD_JOB_FD, CHILD_REPLY_FD)
    except BaseException:  # noqa: BLE001 - a child must never return into the server loop
        code = 71
    finally:
        os._exit(code)


def _status(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1}


def serve(sock: socket.socket) -> int:
    server_pid = os.getpid()
    children: set[int] = set()
    try:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 2)
            except OSError:
                return 1
            if not data:
                return 0
            try:
                request = json.loads(data)
                op = request.get("op")
                if op == "spawn" and len(fds) == 2:
                    pid = os.fork()
                    if pid == 0:
                        sock.close()
                        _child(fds, dict(request.get("limits") or {}), server_pid)
                    children.add(pid)
                    _send(sock, {"pid": pid})
                elif op == "reap" and request.get("pid") in children:
                    pid = int(request["pid"])
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _, status = os.waitpid(pid, 0)
                    children.discard(pid)
                    _send(sock, {"pid": pid, **_status(status)})
                else:
                    _send(sock, {"error": f"bad request {op!r}"})
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    global _devnull, _read_paths
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pipeline decides when we stop
    try:
        _devnull = os.open(os.devnull, os.O_RDWR)
        from blofin_pipeline.strategies import landlock, lockdown

        _warm_up()
        lockdown.check_seccomp()
        _read_paths = landlock.allowed_read_paths()
        abi = lockdown.lock_server(_read_paths)
    except Exception as err:  # noqa: BLE001 - reported to the pipeline, which fails closed
        _send(sock, {"ok": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    gc.collect()
    gc.freeze()  # children touch fewer pages: cheaper copy-on-write
    _send(sock, {"ok": True, "pid": os.getpid(), "landlock_abi": abi})
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
