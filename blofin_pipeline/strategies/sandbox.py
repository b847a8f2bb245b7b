"""Run untrusted strategy code in a separate, resource-limited process.

The parent writes the job (code, params, candles) to a private temporary directory and
starts ``python -m blofin_pipeline.strategies._sandbox_child`` in its own process group
with a scrubbed environment (an allow-list: no API keys, no Airflow connections). The
child caps its CPU time (RLIMIT_CPU), address space (RLIMIT_AS) and file sizes, then
runs the strategy. The parent enforces a wall-clock timeout (counted from the moment
the child is ready, so interpreter start-up on a busy machine does not count) by
killing the whole process group, and validates the returned signals again: the child
is not trusted, and nothing it writes is unpickled.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import (
    DataValidationError,
    StrategyError,
    StrategyRejected,
)
from blofin_pipeline.strategies.base import CANDLE_COLUMNS, validate_signals
from blofin_pipeline.strategies.safety import declared_name, static_check

log = logging.getLogger(__name__)

CHILD_MODULE = "blofin_pipeline.strategies._sandbox_child"
STARTUP_TIMEOUT = 120.0  # seconds for the child to import numpy/pandas and read the job
RESULT_MAX_BYTES = 4 * 1024 * 1024
STDERR_TAIL_CHARS = 1500
STRATEGY_TB_CHARS = 800  # traceback / stderr characters quoted in a rejection reason
# Environment variables the child may inherit; everything else (API keys,
# AIRFLOW_CONN_*, database URLs, ...) is dropped.
ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# Keep numeric libraries single-threaded: threads multiply the address space.
ENV_FIXED = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
    "PYTHONNOUSERSITE": "1",
}
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class SandboxResult:
    """What a sandboxed run produced; `lookahead` is the child's report (dict) if asked."""

    name: str
    category: str
    params: dict[str, Any]
    signals: pd.Series
    lookahead: dict[str, Any] | None = None
    seconds: float = 0.0
    stderr_tail: str = field(default="", repr=False)


def sandbox_env() -> dict[str, str]:
    """The child's environment: an allow-list of harmless variables plus fixed settings."""
    env = {key: os.environ[key] for key in ENV_ALLOW if key in os.environ}
    env.update(ENV_FIXED)
    env["PYTHONPATH"] = _PACKAGE_ROOT
    return env


def _check_candles(candles: pd.DataFrame) -> None:
    if not isinstance(candles, pd.DataFrame) or not isinstance(candles.index, pd.DatetimeIndex):
        raise DataValidationError("sandbox candles must be a DataFrame with a DatetimeIndex")
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise DataValidationError(f"sandbox candles lack column(s) {', '.join(missing)}")
    if len(candles) == 0:
        raise DataValidationError("sandbox candles are empty")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4 * STDERR_TAIL_CHARS))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return text[-STDERR_TAIL_CHARS:].strip()


def _wait_ready(proc: subprocess.Popen, deadline: float) -> bool:
    """True once the child wrote its ready byte; False if it died or start-up timed out."""
    assert proc.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
        if ready:
            return os.read(proc.stdout.fileno(), 1) == b"R"
        if proc.poll() is not None:
            return False


def run_strategy_in_sandbox(
    code: str,
    candles: pd.DataFrame,
    params: dict | None = None,
    *,
    timeout: float = 30.0,
    cpu_seconds: int = 20,
    memory_mb: int = 1024,
    lookahead: dict[str, Any] | None = None,
    origin: str = "<strategy>",
) -> SandboxResult:
    """Load and run `code` in a child process; StrategyRejected with the reason if it fails.

    `lookahead` (e.g. ``{"n_samples": 30, "seed": 0}``) runs the lookahead check in the
    same child; its report is returned as a dict, not judged here.
    """
    _check_candles(candles)
    label = declared_name(code) or origin
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="blofin-sandbox-") as tmp:
        workdir = Path(tmp)
        job = {
            "code": code, "origin": origin, "params": dict(params or {}),
            "candles": candles[list(CANDLE_COLUMNS)].astype("float64"),
            "cpu_seconds": int(cpu_seconds), "memory_mb": int(memory_mb),
            "lookahead": lookahead,
        }
        with open(workdir / "input.pkl", "wb") as fh:
            pickle.dump(job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        stderr_path = workdir / "stderr.log"
        with open(stderr_path, "wb") as stderr_fh:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-m", CHILD_MODULE, str(workdir)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_fh,
                cwd=workdir, env=sandbox_env(), start_new_session=True, close_fds=True,
            )
        try:
            if not _wait_ready(proc, time.monotonic() + max(STARTUP_TIMEOUT, timeout)):
                if proc.poll() is None:
                    _kill_group(proc)
                    proc.wait()
                    raise StrategyRejected(label, [
                        f"sandbox did not start within {STARTUP_TIMEOUT:.0f} s"])
                raise StrategyRejected(label, [
                    f"sandbox child failed before running the strategy "
                    f"(exit code {proc.returncode}): {_read_tail(stderr_path)}"])
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                raise StrategyRejected(label, [
                    f"timed out after {timeout:g} s (wall clock); the process was killed"
                ]) from None
        finally:
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
            else:
                _kill_group(proc)  # grandchildren, if any slipped through
            if proc.stdout is not None:
                proc.stdout.close()
        seconds = time.monotonic() - started
        result = _interpret(proc.returncode, workdir, label, cpu_seconds, memory_mb)
        name = result.get("name") or label
        signals = _load_signals(workdir / "signals.npy", candles, name)
        stderr_tail = _read_tail(stderr_path)
    log.info("strategy %r ran in the sandbox in %.2f s", name, seconds)
    lookahead_report = result.get("lookahead")
    return SandboxResult(
        name=str(name), category=str(result.get("category") or ""),
        params=dict(result.get("params") or {}), signals=signals,
        lookahead=lookahead_report if isinstance(lookahead_report, dict) else None,
        seconds=seconds, stderr_tail=stderr_tail,
    )


def _interpret(returncode: int, workdir: Path, label: str, cpu_seconds: int,
               memory_mb: int) -> dict[str, Any]:
    stderr_tail = _read_tail(workdir / "stderr.log")
    if returncode == -signal.SIGXCPU:
        raise StrategyRejected(label, [
            f"exceeded the CPU time limit of {cpu_seconds} s (killed by SIGXCPU)"])
    if returncode == -signal.SIGXFSZ:
        raise StrategyRejected(label, ["exceeded the file size limit (killed by SIGXFSZ)"])
    if returncode == -signal.SIGKILL:
        raise StrategyRejected(label, [
            f"was killed by SIGKILL (the CPU hard limit of {cpu_seconds + 1} s or the "
            f"system running out of memory)"])
    result = _read_result(workdir / "result.json") if returncode == 0 else None
    if result is None:
        if "MemoryError" in stderr_tail:
            raise StrategyRejected(label, [
                f"exceeded the memory limit of {memory_mb} MB: {stderr_tail[-300:]}"])
        if returncode < 0:
            raise StrategyRejected(label, [
                f"crashed: killed by signal {_signal_name(-returncode)}; stderr: "
                f"{stderr_tail[-STRATEGY_TB_CHARS:]}"])
        raise StrategyRejected(label, [
            f"crashed without a result (exit code {returncode}); stderr: "
            f"{stderr_tail[-STRATEGY_TB_CHARS:]}"])
    name = str(result.get("name") or label)
    if result.get("status") == "ok":
        return result
    kind = result.get("kind")
    message = str(result.get("message", ""))[:2000]
    if kind == "memory":
        raise StrategyRejected(name, [f"exceeded the memory limit of {memory_mb} MB "
                                      f"({message})"])
    if kind == "strategy":
        raise StrategyRejected(name, [message])
    tb = str(result.get("traceback", ""))[-STRATEGY_TB_CHARS:]
    raise StrategyRejected(name, [f"crashed: {message}; traceback tail: {tb}"])


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size == 0 or path.stat().st_size > RESULT_MAX_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _load_signals(path: Path, candles: pd.DataFrame, name: str) -> pd.Series:
    """The child's signals, validated again in the parent (shape, finite, bounds)."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise StrategyRejected(name, [f"invalid output: signals unreadable ({err})"]) from err
    if values.dtype != np.float64 or values.shape != (len(candles),):
        raise StrategyRejected(name, [
            f"invalid output: signals of dtype {values.dtype} and shape {values.shape} "
            f"for {len(candles)} candles"])
    try:
        return validate_signals(pd.Series(values, index=candles.index), candles, name)
    except StrategyError as err:
        raise StrategyRejected(name, [f"invalid output: {err}"]) from err


def run_in_sandbox(
    code: str,
    candles: pd.DataFrame,
    params: dict | None = None,
    *,
    timeout: float = 30.0,
    cpu_seconds: int = 20,
    memory_mb: int = 1024,
    check_static: bool = True,
) -> pd.Series:
    """Validated signals of untrusted `code` on `candles`, computed in a sandboxed child.

    Runs the static check first (unless `check_static=False`); raises StrategyRejected
    with a clear reason on a static violation, timeout, CPU or memory limit, crash or
    bad output.
    """
    if check_static:
        reasons = static_check(code)
        if reasons:
            raise StrategyRejected(declared_name(code) or "<strategy>", reasons)
    return run_strategy_in_sandbox(
        code, candles, params, timeout=timeout, cpu_seconds=cpu_seconds, memory_mb=memory_mb,
    ).signals
