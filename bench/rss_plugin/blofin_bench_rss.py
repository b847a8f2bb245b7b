"""Airflow listener plugin of bench/dag_scale.py (never part of a deployment).

bench/dag_scale.py points `[core] plugins_folder` at this folder. When a task instance
ends, its task process (one forked process per task instance in Airflow 3) appends a line
to $BLOFIN_BENCH_RSS_FILE with its own peak resident memory (`getrusage(RUSAGE_SELF)`,
exact, not sampled), the largest peak of its child processes (RUSAGE_CHILDREN for the
finished ones, VmHWM for the ones still alive, e.g. the strategy sandbox's fork server),
and the CPU seconds of all of them (user + system), a figure the load of a shared machine
hardly changes. The project's adapters stay importable: scripts/env.sh puts plugins/ on
PYTHONPATH.
"""
from __future__ import annotations

import json
import os
import resource
from pathlib import Path

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


def _record(task_instance, state: str) -> None:
    out = os.environ.get("BLOFIN_BENCH_RSS_FILE")
    # Servers call the same hooks with the ORM TaskInstance (e.g. a state set through the
    # API): only the task process itself knows the task's memory.
    if not out or type(task_instance).__name__ != "RuntimeTaskInstance":
        return
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    live_peak_kb, live_cpu_s = _live_descendants()
    row = {"task_id": task_instance.task_id, "map_index": task_instance.map_index,
           "try_number": task_instance.try_number, "run_id": task_instance.run_id, "state": state,
           "pid": os.getpid(), "self_max_rss_kb": own.ru_maxrss,
           "children_max_rss_kb": max(children.ru_maxrss, live_peak_kb),
           "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + live_cpu_s}
    with open(out, "a") as fh:  # one short O_APPEND write per task: lines never interleave
        fh.write(json.dumps(row) + "\n")


def _live_descendants() -> tuple[int, float]:
    """Peak RSS (kB, VmHWM: exact) and CPU seconds of the descendants still alive when the
    task ends (e.g. the strategy sandbox's fork server, stopped only at exit), which
    RUSAGE_CHILDREN cannot see yet."""
    import psutil

    peak, cpu = 0, 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            times = child.cpu_times()
        except (OSError, psutil.Error):  # ended meanwhile: then RUSAGE_CHILDREN has it
            continue
        hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
        peak = max(peak, int(hwm[0]) if hwm else 0)
        cpu += times.user + times.system + times.children_user + times.children_system
    return peak, cpu


class _TaskRss:
    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance) -> None:
        _record(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error) -> None:
        _record(task_instance, "failed")


class BenchTaskRssPlugin(AirflowPlugin):
    name = "blofin_bench_task_rss"
    listeners = [_TaskRss()]
