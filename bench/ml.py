"""Benchmark: train the four ML models on 500,000 rows with >= 20 features.

Target (issue 5): all four fits within 60 s on 2 cores, peak memory under 3 GB.

The work runs in a child process so that its peak resident memory can be read cleanly
from the parent (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``). The child builds
the features of the synthetic sample market (1H bars, three symbols, so the cross-symbol
features are real), labels them, and fits each model with the production settings of
``MLConfig()`` (n_jobs=2), timing each fit (wall and process CPU). Run:
``.venv/bin/python bench/ml.py`` (exit status 0 when within both budgets).

``--scale`` (issue 15) times the daily ML work as the DAG does it, on the synthetic market
(the score window: 180 days of 1H bars; 100 trees/rounds, n_jobs=2) for 3 and 30 symbols
(``--symbols``), each count in a fresh child: the market panel once, then each group of
``PipelineConfig.ml_group_size`` symbols trained with it, as the mapped tasks do. It prints the wall time,
the slowest group, the child's peak RSS and the growth exponent in symbols. With
``--before-root`` (a checkout of the code before, e.g. the main branch) the same symbols run
through that code's ``train_and_evaluate`` in one call, as its single ML task did, and the
ratio is printed: ``.venv/bin/python bench/ml.py --scale --before-root /work/main``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROWS = 500_000
TIME_BUDGET_S = 60.0
MEMORY_BUDGET_MB = 3 * 1024
# Hourly bars: at 1m most moves fall inside the fee band and get no label. 500k labelled
# hourly rows are ~65 synthetic years; the sample market generates them deterministically.
TIMEFRAME = "1H"
SPARE = 1.45  # bars generated per labelled row wanted (the band drops ~15-20 %)
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")


def child(rows: int) -> dict[str, object]:
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from blofin_pipeline.market.sample import SAMPLE_EPOCH, generate_candles
    from blofin_pipeline.ml import MLConfig, build_features, make_labels
    from blofin_pipeline.ml.features import WARMUP_BARS
    from blofin_pipeline.ml.models import make_model

    config = MLConfig(timeframe=TIMEFRAME)
    out: dict[str, object] = {"rows": rows, "n_jobs": config.n_jobs}
    t0 = time.perf_counter()
    end = SAMPLE_EPOCH + pd.Timedelta(hours=int(rows * SPARE) + WARMUP_BARS + config.horizon)
    market = {s: generate_candles(s, TIMEFRAME, SAMPLE_EPOCH, end) for s in SYMBOLS}
    t1 = time.perf_counter()
    features = build_features(market, "BTC-USDT")
    labels = make_labels(market["BTC-USDT"]["close"], config.horizon, config.band)["label"]
    keep = features.notna().all(axis=1) & labels.notna()
    X, y = features[keep].iloc[-rows:], labels[keep].iloc[-rows:].astype(int).to_numpy()
    t2 = time.perf_counter()
    out.update(data_s=t1 - t0, features_s=t2 - t1, n_rows=len(X), n_features=X.shape[1],
               up_share=float(y.mean()))
    if len(X) < rows:
        raise SystemExit(f"only {len(X)} labelled rows, wanted {rows}: raise SPARE")
    fits: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with threadpool_limits(limits=config.n_jobs):
        for model_type in config.models:
            start, cpu_start = time.perf_counter(), time.process_time()
            model = make_model(model_type, config).fit(X, y)
            fit_s = time.perf_counter() - start
            cpu[model_type] = time.process_time() - cpu_start
            proba = model.predict_proba(X)[:, 1]
            fits[model_type] = fit_s
            out[f"{model_type}_predict_s"] = time.perf_counter() - start - fit_s
            out[f"{model_type}_in_sample_acc"] = float(np.mean((proba >= 0.5) == y))
            del model, proba
    out["fit_s"] = fits
    out["fit_cpu_s"] = cpu
    out["train_total_s"] = sum(fits.values())
    out["child_total_s"] = time.perf_counter() - t0
    return out


SCALE_SYMBOLS = (3, 30)
WINDOW_DAYS = 180     # the DAG's default score_window_days: what the ML step trains on
DAILY_TREES = 100     # steps.ml.ML_TREES


def scale_symbols(n: int) -> list[str]:
    """n synthetic instruments: the three defaults, then S03-USDT, S04-USDT, ... (the sample
    market generates any symbol, seeded by its name)."""
    return [*SYMBOLS, *(f"S{i:02d}-USDT" for i in range(3, n))][:n]


def scale_child(n: int, before: bool) -> dict[str, object]:
    """Time the daily ML work on n symbols with the code on sys.path (a new or an old checkout)."""
    import tempfile

    import pandas as pd

    from blofin_pipeline.market.sample import SAMPLE_EPOCH, generate_candles
    from blofin_pipeline.ml import MLConfig, train_and_evaluate

    end = SAMPLE_EPOCH + pd.Timedelta(days=WINDOW_DAYS)
    symbols = scale_symbols(n)
    config = MLConfig(tree_estimators=DAILY_TREES, boost_rounds=DAILY_TREES, timeframe=TIMEFRAME)
    out: dict[str, object] = {"symbols": n}
    with tempfile.TemporaryDirectory() as artefacts:
        t0, cpu0 = time.perf_counter(), time.process_time()
        if before:  # the old single task: every symbol's candles and features in one call
            market = {s: generate_candles(s, TIMEFRAME, SAMPLE_EPOCH, end) for s in symbols}
            train_and_evaluate(market, run_date="2026-01-01", artefact_dir=artefacts, config=config)
            out["groups_s"] = []
        else:
            from blofin_pipeline.ml.features import market_panel
            from blofin_pipeline.config import PipelineConfig

            group_size = PipelineConfig().ml_group_size

            closes = {s: generate_candles(s, TIMEFRAME, SAMPLE_EPOCH, end) for s in symbols}
            panel = market_panel(closes)
            del closes
            out["panel_s"] = time.perf_counter() - t0
            groups = []
            for i in range(0, n, group_size):
                g0 = time.perf_counter()
                group = {s: generate_candles(s, TIMEFRAME, SAMPLE_EPOCH, end) for s in symbols[i: i + group_size]}
                train_and_evaluate(group, run_date="2026-01-01", artefact_dir=artefacts, config=config, panel=panel,
                                   feature_symbols=tuple(sorted(symbols)))
                groups.append(time.perf_counter() - g0)
            out["groups_s"] = groups
        out["total_s"] = time.perf_counter() - t0
        out["cpu_s"] = time.process_time() - cpu0   # every thread of the process: the work, less load-dependent
    return out


def _run_child(args: list[str], root: str) -> tuple[dict[str, object], float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    # Idle OpenMP threads (HistGradientBoosting, LightGBM) sleep instead of spinning: on a
    # shared machine spinning threads burn the CPU the busy ones need (measured: about 2x
    # slower fits under load). Override by exporting OMP_WAIT_POLICY yourself.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # `resource` reports the largest child so far: a fresh python per measurement reports its own.
    wrapper = ("import json, resource, runpy, subprocess, sys; "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(p.stderr); "
               "print(p.stdout.strip().splitlines()[-1] if p.returncode == 0 else ''); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, __file__, *args],
                          capture_output=True, text=True, env=env, check=False, cwd=root)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} under {root} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-2]), int(lines[-1]) / 1024


def scale_main(counts: list[int], before_root: str | None) -> int:
    import math

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"ML scale benchmark: {WINDOW_DAYS} days of {TIMEFRAME} bars per symbol, {DAILY_TREES} trees/rounds, "
          f"{os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")
    totals: dict[str, dict[int, float]] = {"after": {}, "before": {}}
    cpus: dict[str, dict[int, float]] = {"after": {}, "before": {}}
    for n in counts:
        runs = [("after", here)] + ([("before", before_root)] if before_root else [])
        for label, root in runs:
            r, peak = _run_child(["--scale-child", str(n)] + (["--before"] if label == "before" else []), root)
            totals[label][n], cpus[label][n] = float(r["total_s"]), float(r["cpu_s"])
            groups = r["groups_s"]
            detail = (f", panel {r['panel_s']:.2f} s, {len(groups)} groups (slowest {max(groups):.1f} s)"
                      if groups else ", one task")
            print(f"  {label:<6} {n:3d} symbols: wall {r['total_s']:7.1f} s, CPU {r['cpu_s']:7.1f} s{detail},"
                  f" peak RSS {peak:6.0f} MB")
        if before_root:
            print(f"         {n:3d} symbols: before/after = {totals['before'][n] / totals['after'][n]:.2f}x wall,"
                  f" {cpus['before'][n] / cpus['after'][n]:.2f}x CPU")
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        for label in totals:
            t, c = totals[label], cpus[label]
            if lo in t and hi in t:
                print(f"  growth exponent in symbols ({label}, {lo} -> {hi}): wall "
                      f"{math.log(t[hi] / t[lo]) / math.log(hi / lo):.2f}, CPU {math.log(c[hi] / c[lo]) / math.log(hi / lo):.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale", action="store_true", help="time the daily ML work at 3 and 30 symbols")
    parser.add_argument("--symbols", type=int, nargs="+", default=list(SCALE_SYMBOLS))
    parser.add_argument("--before-root", help="a checkout of the code before, measured side by side")
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.rows)))
        return 0
    if args.scale_child:
        print(json.dumps(scale_child(args.scale_child, args.before)))
        return 0
    if args.scale:
        return scale_main(args.symbols, args.before_root)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", "--rows", str(args.rows)],
                          capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB

    print(f"ML benchmark: {r['n_rows']:,} rows x {r['n_features']} features, n_jobs={r['n_jobs']},"
          f" {os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f},"
          f" OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}")
    print(f"  synthetic candles   {r['data_s']:7.2f} s")
    print(f"  features + labels   {r['features_s']:7.2f} s")
    for name, seconds in r["fit_s"].items():
        print(f"  fit {name:<15} {seconds:7.2f} s   (CPU {r['fit_cpu_s'][name]:6.2f} s,"
              f" predict {r[f'{name}_predict_s']:.2f} s,"
              f" in-sample acc {r[f'{name}_in_sample_acc']:.3f})")
    print(f"  TRAINING TOTAL      {r['train_total_s']:7.2f} s   (budget {TIME_BUDGET_S:.0f} s;"
          f" CPU {sum(r['fit_cpu_s'].values()):.2f} s)")
    print(f"  child end to end    {r['child_total_s']:7.2f} s   (wall incl. interpreter start {wall:.2f} s)")
    print(f"  PEAK RSS            {peak_mb:7.0f} MB  (budget {MEMORY_BUDGET_MB} MB)")
    ok = r["train_total_s"] <= TIME_BUDGET_S and peak_mb <= MEMORY_BUDGET_MB
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
