"""Runner executed in the sandbox's child process (``python -m`` this module WORKDIR).

It reads the job our parent wrote (``input.pkl``: trusted, written by the parent),
limits its own CPU time, address space and file sizes, signals readiness with one byte
on stdout, then loads and runs the untrusted strategy, validates its output, runs the
lookahead check if asked, and writes ``result.json`` and ``signals.npy`` (no pickle on
the way back: the parent never unpickles what the child wrote).
"""
from __future__ import annotations

import json
import math
import os
import pickle
import resource
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies.base import Strategy, load_strategy_source
from blofin_pipeline.strategies.lookahead import check_lookahead

MB = 1024 * 1024
TRACEBACK_CHARS = 1500
MESSAGE_CHARS = 4000  # an exception message can hold a huge repr; the parent needs the gist


def _limit(kind: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def _apply_limits(job: dict, n_bars: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    cpu = int(math.ceil(used + job["cpu_seconds"]))
    # SIGXCPU at the soft limit, SIGKILL one second later at the hard limit.
    _limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    _limit(resource.RLIMIT_AS, int(job["memory_mb"]) * MB)
    _limit(resource.RLIMIT_FSIZE, 64 * MB + 16 * n_bars)
    _limit(resource.RLIMIT_CORE, 0)


def _caused_by(err: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    while err is not None and seen < 20:
        if isinstance(err, kind):
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


def _tail(err: BaseException) -> str:
    text = "".join(traceback.format_exception(err))
    return text[-TRACEBACK_CHARS:]


def run_job(job: dict, candles: pd.DataFrame) -> tuple[dict, np.ndarray | None]:
    result: dict = {"status": "error", "name": None, "category": None}
    try:
        cls = load_strategy_source(job["code"], origin=job["origin"])
        result.update(name=cls.name, category=cls.category)
        strategy = cls(job["params"])
        result["params"] = _jsonable(strategy.params)
        signals = Strategy.signals(strategy, candles)
        if job.get("lookahead") is not None:
            report = check_lookahead(cls, candles, params=job["params"], **job["lookahead"])
            result["lookahead"] = report.to_dict()
        result["status"] = "ok"
        return result, signals.to_numpy(dtype="float64")
    except MemoryError as err:
        result.update(kind="memory", message=f"MemoryError: {err}", traceback=_tail(err))
    except StrategyError as err:
        if _caused_by(err, MemoryError):
            result.update(kind="memory", message=str(err), traceback=_tail(err))
        elif _caused_by(err, RecursionError):
            result.update(kind="crash", message=str(err), traceback=_tail(err))
        else:
            result.update(kind="strategy", message=str(err), traceback=_tail(err))
    except BaseException as err:  # SystemExit, KeyboardInterrupt... from untrusted code
        result.update(kind="crash", message=f"{type(err).__name__}: {err}",
                      traceback=_tail(err))
    return result, None


def _jsonable(params: dict) -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        out[str(key)] = value if isinstance(value, (int, float, str, bool, type(None))) \
            else repr(value)
    return out


def main(workdir: str) -> int:
    root = Path(workdir)
    with open(root / "input.pkl", "rb") as fh:
        job = pickle.load(fh)  # written by our parent, not by the strategy
    candles = job["candles"]
    result_fh = open(root / "result.json", "w", encoding="utf-8")
    signals_fh = open(root / "signals.npy", "wb")
    _apply_limits(job, len(candles))
    # Strategy prints go to stderr; stdout carries only the ready byte.
    sys.stdout.flush()
    os.write(1, b"R")
    os.close(1)
    sys.stdout = sys.stderr
    result, signals = run_job(job, candles)
    if signals is not None:
        np.save(signals_fh, signals, allow_pickle=False)
    signals_fh.close()
    if isinstance(result.get("message"), str):
        result["message"] = result["message"][:MESSAGE_CHARS]
    json.dump(result, result_fh, default=str)
    result_fh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
