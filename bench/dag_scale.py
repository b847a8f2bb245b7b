"""Benchmark: the whole blofin_daily DAG for a growing number of symbols (issue 15).

Each size runs ONE real DAG run on the embedded default (synthetic sample market, 1H,
400 days of history, offline LLM steps; the DAG's own defaults otherwise) in a throwaway
AIRFLOW_HOME and workspace, started by scripts/airflow-up.sh (tests/e2e/conftest.py):
LocalExecutor on SQLite, as `scripts/airflow-up.sh` runs it, each task instance in a
process of its own. Symbols: BTC, ETH, SOL, XRP, then SYN05-USDT, SYN06-USDT, ... (the
sample market generates any symbol; unknown ones get its default volatility and price).

Printed per size: each task's time (the sum over its mapped instances, their count and the
longest one), each task's peak memory (max RSS of its task processes, read by the listener
plugin in bench/rss_plugin/ inside each task process: exact, not sampled), the DAG's wall
time and the total step time (sum of every task instance's duration). Then the growth
exponent of the total step time in symbols (log-log least-squares slope over the sizes in
[10, 50]) and the targets: 50 symbols <= 180 s wall, every task < 2 GB, exponent <= 1.05,
3 symbols no slower than 47 s (issue 15's figure of the code before it).

`--baseline` checks the 3-symbol target against the code issue 15's 47 s was measured on
(`BASELINE_REV`: one ML task, two fixed scoring chunks, no dense lookahead gate) in the SAME
run, as the machine's speed moves by a third from hour to hour: a git worktree of that
commit gets this harness (this file, its RSS listener, the e2e helpers) and the same venv,
and the two trees run 3 symbols in turn, `--rounds` times each; the medians and their ratio
are printed.

`--celery` runs the DAG instead on the CeleryExecutor (PostgreSQL metadata + data
database, Redis broker: tests/e2e/celery_stack.py) once with one worker and once with
two (one task slot each), and prints the throughput of the scoring and ML task families
(instances per second of their span, first start to last end) and the ratio two : one.

    .venv/bin/python bench/dag_scale.py                      # 3, 10, 30, 50 symbols
    .venv/bin/python bench/dag_scale.py --symbols 3 10
    .venv/bin/python bench/dag_scale.py --baseline --rounds 3
    .venv/bin/python bench/dag_scale.py --celery --symbols 10
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.celery_stack import celery_stack, mapped_task_ids  # noqa: E402
from tests.e2e.conftest import AIRFLOW_BIN, DAG_ID, AirflowServer, base_env, running, throwaway_dir  # noqa: E402

SIZES = (3, 10, 30, 50)
NAMED = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT")
TARGET_WALL_50_S = 180.0
TARGET_TASK_RSS_MB = 2048.0
TARGET_EXPONENT = 1.05
BASELINE_3_WALL_S = 47.0  # issue 15: 3 symbols before the scale work
BASELINE_REV = "f24201e"  # the commit that figure was measured on (the README's test figures after issues 10-14)
CELERY_FAMILIES = ("score_strategies", "train_ml")  # substrings of the task ids whose throughput counts
RSS_PLUGIN = ROOT / "bench" / "rss_plugin"


def symbols(n: int) -> list[str]:
    return list(NAMED[:n]) + [f"SYN{i:02d}-USDT" for i in range(len(NAMED) + 1, n + 1)]


def conf(n: int) -> dict[str, Any]:
    return {"symbols": symbols(n), "llm_mode": "offline", "data_source": "sample", "timeframe": "1H",
            "history_days": 400}


def _ts(value: str | None) -> datetime:
    if value is None:
        raise ValueError("a finished task instance without start or end date")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class RunResult:
    n_symbols: int
    wall_s: float
    tis: list[dict]
    rss_kb: dict[tuple[str, int], int]
    cpu_s: dict[tuple[str, int], float]
    load: tuple[float, float]  # load average (1 min, 5 min) when the run ended

    @property
    def step_total_s(self) -> float:
        return sum(t["duration"] or 0.0 for t in self.tis)

    @property
    def cpu_total_s(self) -> float:
        return sum(self.cpu_s.values())

    def families(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for t in self.tis:
            out[t["task_id"]].append(t)
        return dict(out)


def read_usage(path: Path, run_id: str) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], float]]:
    """From the listener's lines, per (task_id, map_index): the peak RSS in kB over its
    tries, and the CPU seconds of all its tries."""
    rss: dict[tuple[str, int], int] = {}
    cpu: dict[tuple[str, int], float] = defaultdict(float)
    if not path.exists():
        return rss, cpu
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["run_id"] != run_id:
            continue
        key = (row["task_id"], row["map_index"])
        rss[key] = max(rss.get(key, 0), row["self_max_rss_kb"], row["children_max_rss_kb"])
        cpu[key] += row["cpu_s"]
    return rss, dict(cpu)


def run_dag(srv: AirflowServer, n: int, rss_file: Path) -> RunResult:
    """One DAG run of n symbols; fails loudly unless every task instance succeeded."""
    srv.unpause()
    run = srv.trigger(conf(n))
    run_id = run["dag_run_id"]
    state = srv.wait_runs([run_id], timeout=900 + 60 * n)[run_id]
    tis = srv.task_instances(run_id)
    bad = [(t["task_id"], t["map_index"], t["state"]) for t in tis if t["state"] != "success"]
    if state != "success" or bad:
        raise SystemExit(f"{n} symbols: run {run_id} ended {state}: {bad}\n{srv.describe_failures(run_id)}")
    dag_run = srv.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    wall = (_ts(dag_run["end_date"]) - _ts(dag_run["start_date"])).total_seconds()
    rss, cpu = read_usage(rss_file, run_id)
    missing = [(t["task_id"], t["map_index"]) for t in tis if (t["task_id"], t["map_index"]) not in rss]
    if missing:
        raise SystemExit(f"no peak RSS reported by the task processes of {missing} (listener plugin not loaded?)")
    load = os.getloadavg()
    return RunResult(n_symbols=n, wall_s=wall, tis=tis, rss_kb=rss, cpu_s=cpu, load=(load[0], load[1]))


def bench_env(base: Path) -> tuple[dict[str, str], Path]:
    rss_file = base / "task_rss.jsonl"
    return {"AIRFLOW__CORE__PLUGINS_FOLDER": str(RSS_PLUGIN), "BLOFIN_BENCH_RSS_FILE": str(rss_file)}, rss_file


def run_local(n: int) -> RunResult:
    with throwaway_dir("blofin-scale-") as base:
        home, workspace = base / "airflow_home", base / "workspace"
        extra, rss_file = bench_env(base)
        env = {**base_env(home, workspace), **extra}
        with running(AirflowServer(home=home, workspace=workspace, env=env)) as srv:
            return run_dag(srv, n, rss_file)


def print_run(res: RunResult) -> None:
    print(f"\n== {res.n_symbols} symbols: DAG wall {res.wall_s:.1f} s, total step time {res.step_total_s:.1f} s, "
          f"CPU {res.cpu_total_s:.1f} s (load average {res.load[0]:.1f} / {res.load[1]:.1f} at the end)")
    print(f"  {'task':<34} {'n':>3} {'sum s':>8} {'max s':>7} {'CPU s':>7} {'peak RSS MB':>12}")
    fams = res.families()
    for task_id in sorted(fams, key=lambda f: min(_ts(t["start_date"]) for t in fams[f])):
        tis = fams[task_id]
        durations = [t["duration"] or 0.0 for t in tis]
        peak = max(res.rss_kb[(task_id, t["map_index"])] for t in tis) / 1024
        cpu = sum(res.cpu_s[(task_id, t["map_index"])] for t in tis)
        print(f"  {task_id:<34} {len(tis):>3} {sum(durations):>8.1f} {max(durations):>7.1f} {cpu:>7.1f} {peak:>12.0f}")


def growth_exponent(results: list[RunResult], lo: int = 10, hi: int = 50, *,
                    cpu: bool = False) -> tuple[float, list[int]] | None:
    """Least-squares slope of log(total step time, or CPU time) on log(symbols) over the sizes in [lo, hi]."""
    pts = [(math.log(r.n_symbols), math.log(r.cpu_total_s if cpu else r.step_total_s))
           for r in results if lo <= r.n_symbols <= hi]
    if len(pts) < 2:
        return None
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return slope, sorted(r.n_symbols for r in results if lo <= r.n_symbols <= hi)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def print_summary(results: list[RunResult]) -> None:
    print(f"\n== summary ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"  {'symbols':>7} {'wall s':>8} {'steps s':>8} {'CPU s':>8} {'max task RSS MB':>16} {'load 1/5 min':>13}")
    for r in results:
        print(f"  {r.n_symbols:>7} {r.wall_s:>8.1f} {r.step_total_s:>8.1f} {r.cpu_total_s:>8.1f}"
              f" {max(r.rss_kb.values()) / 1024:>16.0f} {r.load[0]:>6.1f}/{r.load[1]:<6.1f}")
    by_n = {r.n_symbols: r for r in results}
    print("targets:")
    if 50 in by_n:
        print(f"  50 symbols wall {by_n[50].wall_s:.1f} s <= {TARGET_WALL_50_S:.0f} s: "
              f"{_verdict(by_n[50].wall_s <= TARGET_WALL_50_S)}")
    peak = max(max(r.rss_kb.values()) for r in results) / 1024
    print(f"  every task's peak RSS {peak:.0f} MB < {TARGET_TASK_RSS_MB:.0f} MB: {_verdict(peak < TARGET_TASK_RSS_MB)}")
    print_exponents(results)
    if 3 in by_n:
        print(f"  3 symbols wall {by_n[3].wall_s:.1f} s <= {BASELINE_3_WALL_S:.0f} s (before): "
              f"{_verdict(by_n[3].wall_s <= BASELINE_3_WALL_S)} (a figure of another day: --baseline compares "
              "with that code in the same run)")


def print_exponents(results: list[RunResult]) -> None:
    fit, cpu_fit = growth_exponent(results), growth_exponent(results, cpu=True)
    if fit is None or cpu_fit is None:
        wide, wide_cpu = growth_exponent(results, 1, 10_000), growth_exponent(results, 1, 10_000, cpu=True)
        extra = (f" (over {wide[1]} symbols: {wide[0]:.2f}, CPU time {wide_cpu[0]:.2f}; not the target's range)"
                 if wide and wide_cpu else "")
        print(f"  growth exponent 10..50 symbols: not measured (needs two sizes in [10, 50]){extra}")
        return
    print(f"  growth exponent of total step time over {fit[1]} symbols {fit[0]:.2f} <= {TARGET_EXPONENT}: "
          f"{_verdict(fit[0] <= TARGET_EXPONENT)} (of CPU time: {cpu_fit[0]:.2f}, which the machine's load "
          "hardly moves)")


# -- the 3-symbol target against the baseline code, in the same run -----------------------------
HARNESS = ("bench/dag_scale.py", "tests/e2e/conftest.py", "tests/e2e/celery_stack.py")
WALL_LINE = re.compile(r"== 3 symbols: DAG wall ([0-9.]+) s")


def baseline_tree(rev: str, base: Path) -> Path:
    """A worktree of `rev` holding this harness and sharing this checkout's venv. The RSS
    listener goes into the tree's own plugins folder too: older env.sh files set the
    plugins folder themselves (the listener does nothing unless the bench's file is set)."""
    tree = base / f"tree-{rev}"
    done = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench/dag_scale.py: cannot check out {rev}: {done.stderr.strip()}")
    (tree / ".venv").symlink_to(ROOT / ".venv")
    for rel in HARNESS:
        shutil.copy2(ROOT / rel, tree / rel)
    shutil.copytree(RSS_PLUGIN, tree / "bench" / "rss_plugin", dirs_exist_ok=True)
    shutil.copy2(RSS_PLUGIN / "blofin_bench_rss.py", tree / "plugins" / "blofin_bench_rss.py")
    return tree


def run_tree(tree: Path) -> float:
    """3 symbols by the harness inside `tree`, in a shell that sourced only that tree's env.sh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BLOFIN")) and k != "PYTHONPATH"}
    out = subprocess.run(["bash", "-c", '. scripts/env.sh && exec python bench/dag_scale.py --symbols 3'],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    table = out.stdout.split("== summary")[0]  # the child's own targets compare with fixed figures
    print("\n".join(f"  | {line}" for line in table.splitlines() if line.strip()), flush=True)
    found = WALL_LINE.search(out.stdout)
    if out.returncode or not found:
        raise SystemExit(f"bench/dag_scale.py: the run in {tree} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(found.group(1))


def baseline_report(rev: str, rounds: int) -> None:
    with throwaway_dir("blofin-baseline-") as base:
        tree = baseline_tree(rev, base)
        try:
            walls: dict[str, list[float]] = {"baseline": [], "this checkout": []}
            for i in range(rounds):
                print(f"\n== round {i + 1} of {rounds}: baseline {rev}", flush=True)
                walls["baseline"].append(run_tree(tree))
                print(f"== round {i + 1} of {rounds}: this checkout", flush=True)
                res = run_local(3)
                print_run(res)
                walls["this checkout"].append(res.wall_s)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    old, new = (statistics.median(walls[k]) for k in ("baseline", "this checkout"))
    print(f"\n== 3 symbols, {rounds} rounds in turn ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    for k, v in walls.items():
        print(f"  {k:<14} DAG wall {', '.join(f'{x:.1f}' for x in v)} s (median {statistics.median(v):.1f} s)")
    print(f"target: 3 symbols no slower than the code before issue 15 ({rev}), same run: median {new:.1f} s "
          f"against {old:.1f} s, ratio {new / old:.2f}: {_verdict(new <= old)}")


# -- Celery: one worker against two ------------------------------------------------------------
def family_ids(res: RunResult, mapped: list[str]) -> list[str]:
    """The scoring and ML task families of the run (mapped or not), found by name."""
    return sorted(f for f in res.families() if f in mapped or any(k in f for k in CELERY_FAMILIES))


def throughput(tis: list[dict]) -> tuple[float, float, float]:
    """(instances per second over the family's span, span s, busy s = sum of durations)."""
    span = (max(_ts(t["end_date"]) for t in tis) - min(_ts(t["start_date"]) for t in tis)).total_seconds()
    return len(tis) / span, span, sum(t["duration"] or 0.0 for t in tis)


def run_celery(workers: int, n: int) -> tuple[RunResult, list[str]]:
    with throwaway_dir("blofin-scale-celery-") as base:
        extra, rss_file = bench_env(base)
        with celery_stack(workers, concurrency=1, extra_env=extra) as stack:
            return run_dag(stack.server, n, rss_file), mapped_task_ids(stack.server, DAG_ID)


def celery_report(n: int) -> None:
    runs = {w: run_celery(w, n) for w in (1, 2)}
    mapped = runs[2][1]
    fams = family_ids(runs[2][0], mapped)
    print(f"\n== Celery, {n} symbols, one task slot per worker, {os.cpu_count()} cores; mapped tasks: {mapped}")
    print(f"  {'family':<30} {'n':>3} {'1w tasks/s':>10} {'span s':>7} {'busy s':>7}"
          f" {'2w tasks/s':>10} {'span s':>7} {'busy s':>7} {'ratio':>6}")
    spans = {1: 0.0, 2: 0.0}
    for fam in fams:
        one, two = (throughput(runs[w][0].families()[fam]) for w in (1, 2))
        spans[1] += one[1]
        spans[2] += two[1]
        count = len(runs[2][0].families()[fam])
        print(f"  {fam:<30} {count:>3} {one[0]:>10.3f} {one[1]:>7.1f} {one[2]:>7.1f}"
              f" {two[0]:>10.3f} {two[1]:>7.1f} {two[2]:>7.1f} {two[0] / one[0]:>5.2f}x")
    placed = defaultdict(int)
    for t in runs[2][0].tis:
        if t["task_id"] in fams:
            placed[t["hostname"]] += 1
    print(f"  scoring + ML together: {spans[1]:.1f} s of span on one worker, {spans[2]:.1f} s on two: "
          f"{spans[1] / spans[2]:.2f}x (target >= 1.8x); instances per worker on two: {dict(placed)}")
    print(f"  DAG wall: one worker {runs[1][0].wall_s:.1f} s, two {runs[2][0].wall_s:.1f} s; load average at the "
          f"end of each run {runs[1][0].load[0]:.1f} and {runs[2][0].load[0]:.1f}")
    print(f"  note: two workers x 1 slot need >= 2 free cores for 2x; this machine has {os.cpu_count()} cores, "
          "shared with the scheduler, the API server, PostgreSQL and Redis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=None,
                        help=f"symbol counts to run (default {' '.join(map(str, SIZES))}; --celery: 10)")
    parser.add_argument("--celery", action="store_true", help="one Celery worker against two instead")
    parser.add_argument("--baseline", nargs="?", const=BASELINE_REV, default=None, metavar="REV",
                        help=f"3 symbols against the code of REV (default {BASELINE_REV}) in turn instead")
    parser.add_argument("--rounds", type=int, default=2, help="--baseline: runs of each tree (default 2)")
    args = parser.parse_args(argv)
    require_airflow_or_exit()
    if args.baseline:
        if args.rounds < 1:
            parser.error(f"--rounds must be at least 1, got {args.rounds}")
        baseline_report(args.baseline, args.rounds)
        return 0
    if args.celery:
        for n in args.symbols or [10]:
            celery_report(n)
        return 0
    results = []
    for n in args.symbols or SIZES:
        start = time.monotonic()
        results.append(run_local(n))
        print_run(results[-1])
        print(f"  (with Airflow start and stop: {time.monotonic() - start:.0f} s)", flush=True)
    print_summary(results)
    return 0


def require_airflow_or_exit() -> None:
    if not AIRFLOW_BIN.exists():
        raise SystemExit(f"bench/dag_scale.py: no Airflow in {AIRFLOW_BIN}: run scripts/setup.sh first")


if __name__ == "__main__":
    raise SystemExit(main())
