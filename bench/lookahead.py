"""Benchmark: the lookahead gate per candidate, against the old sampled-only gate.

What `backtest_candidates` does for each candidate: the gate on one symbol's window (1H
bars of the sample market). Every built-in strategy is treated as untrusted (sandboxed,
origin "user"), as a designed or tuned candidate is, and gated twice in the same run:

* new: `gate.run_gate` (defaults: 30 sampled cuts + dense check of the last 2301 bars
  and the first 720; every walk-forward candidate set and corner: 10 sampled cuts), each
  batch of cuts in one sandbox request;
* old (peer): the gate before this change: the defaults only, two full runs and 30
  sampled cuts, one sandbox round trip per cut.

For scale it also times what the DAG already spends on the same candidate: scoring it
by walk-forward on the 3 symbols (`wf_folds` x (`wf_candidates` + 2) calls per symbol).
It then gives the CPU seconds of both gates in-process (the built-ins as shipped), a
figure the machine's load does not move. With `--windows N` it measures the sparse-peek catch rate (tests/strategies/corpus/
lookahead_sparse_volume.py) of both gates over N seeded windows (in-process, slower).

    python bench/lookahead.py [--days 180 400] [--strategies 14] [--windows 20]

The machine is shared: the sides are interleaved per strategy; compare ratios of one run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blofin_pipeline.backtest.scoring import candidate_seed  # noqa: E402
from blofin_pipeline.backtest.walkforward import walk_forward  # noqa: E402
from blofin_pipeline.config import DEFAULT_SYMBOLS, PipelineConfig  # noqa: E402
from blofin_pipeline.market.sample import generate_candles  # noqa: E402
from blofin_pipeline.strategies import builtin_strategy_sources, load_strategy_source  # noqa: E402
from blofin_pipeline.strategies.gate import run_gate  # noqa: E402
from blofin_pipeline.strategies.lookahead import (  # noqa: E402
    DEFAULT_SAMPLES,
    check_lookahead,
    default_min_history,
    sample_cuts,
)
from blofin_pipeline.strategies.runner import SandboxedStrategy, signal_function  # noqa: E402
from blofin_pipeline.strategies.sandbox import fork_server  # noqa: E402
from blofin_pipeline.strategies.testdata import check_candles  # noqa: E402

CFG = PipelineConfig()


def window(symbol: str, days: int) -> pd.DataFrame:
    end = pd.Timestamp("2026-04-01", tz="UTC")
    return generate_candles(symbol, "1H", end - pd.Timedelta(days=days), end)


def old_gate(fn, candles: pd.DataFrame) -> bool:
    """The gate before: two full runs, then one sandbox call per sampled cut."""
    full = np.nan_to_num(fn.raw(candles).to_numpy())
    again = np.nan_to_num(fn.raw(candles).to_numpy())
    ok = np.allclose(full, again, atol=1e-9, rtol=0)
    for t in sample_cuts(len(candles), n_samples=DEFAULT_SAMPLES,
                         min_history=default_min_history(len(candles))):
        prefix = candles.iloc[: t + 1]
        ok &= np.allclose(np.nan_to_num(fn.raw(prefix).to_numpy()), full[: t + 1], atol=1e-9, rtol=0)
    return bool(ok)


def bench_cost(days: int, n_strategies: int) -> None:
    frames = {s: window(s, days) for s in DEFAULT_SYMBOLS}
    gate_frame = frames[DEFAULT_SYMBOLS[0]]
    print(f"\n== {days} days of 1H bars: {len(gate_frame)} bars per symbol ==")
    print(f"{'strategy':<22} {'new gate':>9} {'runs':>6} {'sets':>5} {'old gate':>9} {'ratio':>6} "
          f"{'score 3 sym':>11}")
    rows = []
    for name, code in list(builtin_strategy_sources().items())[:n_strategies]:
        with SandboxedStrategy(code, origin="user", label=name) as fn:
            fn(gate_frame)  # the sandbox stage's run, outside both timings
            started = time.perf_counter()
            report = run_gate(fn, gate_frame, seed=candidate_seed(name, 1),
                              n_candidates=CFG.wf_candidates)
            new = time.perf_counter() - started
            started = time.perf_counter()
            old_ok = old_gate(fn, gate_frame)
            old = time.perf_counter() - started
            started = time.perf_counter()
            for frame in frames.values():
                walk_forward(frame, fn, fn.params, fn.param_space, n_folds=CFG.wf_folds,
                             n_candidates=CFG.wf_candidates, seed=candidate_seed(name, 1),
                             fee=CFG.fee, slippage=CFG.slippage, timeframe=CFG.timeframe)
            scoring = time.perf_counter() - started
        if not (report.ok and old_ok):
            raise SystemExit(f"{name}: an honest built-in was rejected: {report.detail}")
        rows.append((new, old, scoring))
        print(f"{name:<22} {new:>8.2f}s {report.runs:>6} {len(report.sets):>5} {old:>8.2f}s "
              f"{new / old:>6.1f} {scoring:>10.2f}s")
    new, old, scoring = (np.array(col) for col in zip(*rows))
    print(f"{'median':<22} {np.median(new):>8.2f}s {'':>6} {'':>5} {np.median(old):>8.2f}s "
          f"{np.median(new) / np.median(old):>6.1f} {np.median(scoring):>10.2f}s")
    print(f"gate seconds per candidate: median {np.median(new):.2f}, max {new.max():.2f} "
          f"(old gate median {np.median(old):.2f}); extra per candidate vs scoring it on 3 "
          f"symbols: {np.median(new - old) / np.median(scoring):.1f}x the scoring time")


def bench_cpu(days: int, n_strategies: int) -> None:
    """CPU seconds of both gates, in-process (built-ins as shipped): the figure that does
    not move with the machine's load, unlike the sandboxed wall-clock times above."""
    frame = window(DEFAULT_SYMBOLS[0], days)
    print(f"\n== CPU seconds, in-process, {days} days ({len(frame)} bars) ==")
    new_cpu, old_cpu = [], []
    for name, code in list(builtin_strategy_sources().items())[:n_strategies]:
        fn = signal_function(code, origin="builtin")
        started = time.process_time()
        report = run_gate(fn, frame, seed=candidate_seed(name, 1), n_candidates=CFG.wf_candidates)
        new_cpu.append(time.process_time() - started)
        started = time.process_time()
        old_gate(fn, frame)
        old_cpu.append(time.process_time() - started)
        print(f"{name:<22} new {new_cpu[-1]:>6.2f} s CPU ({new_cpu[-1] / report.runs * 1e3:.2f} ms "
              f"per run)   old {old_cpu[-1]:>5.2f} s CPU")
    print(f"median CPU per candidate: new {np.median(new_cpu):.2f} s, old {np.median(old_cpu):.2f} s "
          f"({np.median(new_cpu) / np.median(old_cpu):.0f}x)")


def bench_catch_rate(n_windows: int) -> None:
    code = (REPO / "tests/strategies/corpus/lookahead_sparse_volume.py").read_text()
    sparse = load_strategy_source(code, origin="sparse")  # our own corpus file, in-process
    new_caught = old_caught = 0
    seconds = []
    for k in range(n_windows):
        candles = check_candles(3100, seed=1000 + k)
        started = time.perf_counter()
        new_caught += not run_gate(sparse, candles, seed=k, n_candidates=CFG.wf_candidates).ok
        seconds.append(time.perf_counter() - started)
        old_caught += not check_lookahead(sparse, candles, n_samples=DEFAULT_SAMPLES, seed=k).ok
    print(f"\nsparse peek (volume above its causal 99.8% quantile reads the next bar), "
          f"{n_windows} seeded windows of 3100 bars:")
    print(f"  new gate caught {new_caught}/{n_windows}; old sampled gate {old_caught}/{n_windows}; "
          f"bound 1 - 0.998^2301 = {1 - 0.998 ** 2301:.4f}; new gate "
          f"{statistics.median(seconds):.1f} s per window (in-process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[180, 400])
    parser.add_argument("--strategies", type=int, default=14)
    parser.add_argument("--windows", type=int, default=0)
    args = parser.parse_args()
    fork_server()
    for days in args.days:
        bench_cost(days, args.strategies)
    bench_cpu(args.days[0], args.strategies)
    if args.windows:
        bench_catch_rate(args.windows)


if __name__ == "__main__":
    main()
