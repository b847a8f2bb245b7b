"""Benchmark: scoring in the kernel sandbox against the same scoring in-process.

What the daily `score_strategies` step does for every active strategy on every symbol:
a walk-forward evaluation (the run's default folds and parameter sets: 7 sets, each
signal computed once over the window and sliced for the 4 folds = 7 signal calls each;
32 before signals were shared across folds) on the scoring window (180 days of 1H
candles of the built-in sample market). Each built-in strategy is scored twice:

* in-process, as the shipped class (how built-ins run in the pipeline);
* sandboxed, its same source treated as untrusted (origin "user"): one locked-down
  child per strategy, every call a round trip to it.

Both must give the same metrics (checked); the script prints the totals and the ratio
(target <= 1.5x), then the latency of one call (a trivial strategy, so the figure is the
sandbox's own cost), of opening a sandboxed strategy (fork + lockdown + load) and of
starting the fork server.

    python bench/sandbox.py [--symbols 3] [--days 180] [--repeat 3]

The machine is shared: the two sides are interleaved per strategy and the best of
`--repeat` rounds is kept for each, so that load bursts do not land on one side only.
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

from blofin_pipeline.config import DEFAULT_SYMBOLS, PipelineConfig  # noqa: E402
from blofin_pipeline.market.sample import generate_candles  # noqa: E402
from blofin_pipeline.backtest.walkforward import walk_forward  # noqa: E402
from blofin_pipeline.strategies import builtin_strategy_sources  # noqa: E402
from blofin_pipeline.strategies.runner import (  # noqa: E402
    SandboxedStrategy,
    signal_function,
)
from blofin_pipeline.strategies.sandbox import ForkServer, fork_server  # noqa: E402

TRIVIAL = '''
import pandas as pd
from blofin_pipeline.strategies import Strategy


class Trivial(Strategy):
    name = "trivial"
    category = "trend"
    params = {"k": 1}
    param_space = {"k": (1, 5)}

    def generate_signals(self, candles):
        return candles["close"] * 0.0
'''


def window(symbols: tuple[str, ...], days: int, timeframe: str) -> dict[str, pd.DataFrame]:
    end = pd.Timestamp("2026-04-01", tz="UTC")
    return {s: generate_candles(s, timeframe, end - pd.Timedelta(days=days), end) for s in symbols}


def score(fn, candles: pd.DataFrame, cfg: PipelineConfig) -> dict:
    wf = walk_forward(candles, fn, fn.params, fn.param_space, n_folds=cfg.wf_folds,
                      n_candidates=cfg.wf_candidates, seed=7, fee=cfg.fee,
                      slippage=cfg.slippage, timeframe=cfg.timeframe)
    return wf.metrics


def bench_scoring(candles: dict[str, pd.DataFrame], cfg: PipelineConfig, repeat: int) -> None:
    sources = builtin_strategy_sources()
    fork_server()  # started once per process, outside the timings (reported below)
    inproc_best: dict[str, float] = {}
    sandbox_best: dict[str, float] = {}
    for _ in range(repeat):
        for name, code in sources.items():
            for side in ("inproc", "sandbox"):
                started = time.perf_counter()
                fn = (signal_function(code, origin="builtin") if side == "inproc"
                      else SandboxedStrategy(code, origin="user", label=name))
                with fn:
                    metrics = [score(fn, frame, cfg) for frame in candles.values()]
                seconds = time.perf_counter() - started
                best = inproc_best if side == "inproc" else sandbox_best
                best[name] = min(best.get(name, np.inf), seconds)
                if side == "inproc":
                    reference = metrics
                else:
                    for a, b in zip(reference, metrics):
                        for key in ("sharpe", "total_return", "n_trades"):
                            if not (a[key] == b[key] or (np.isnan(a[key]) and np.isnan(b[key]))):
                                raise SystemExit(f"{name}: {key} differs in the sandbox: "
                                                 f"{a[key]} != {b[key]}")
    calls = cfg.wf_folds * (cfg.wf_candidates + 2)
    print(f"scoring {len(sources)} strategies x {len(candles)} symbols "
          f"({len(next(iter(candles.values())))} bars each, {calls} signal calls per "
          f"strategy and symbol); best of {repeat}")
    print(f"{'strategy':<22} {'in-process':>11} {'sandboxed':>10} {'ratio':>6}")
    for name in sources:
        print(f"{name:<22} {inproc_best[name]:>10.3f}s {sandbox_best[name]:>9.3f}s "
              f"{sandbox_best[name] / inproc_best[name]:>6.2f}")
    total_in, total_sb = sum(inproc_best.values()), sum(sandbox_best.values())
    ratio = total_sb / total_in
    print(f"{'total':<22} {total_in:>10.3f}s {total_sb:>9.3f}s {ratio:>6.2f}  "
          f"(target <= 1.50: {'met' if ratio <= 1.5 else 'NOT met'})")
    n_calls = calls * len(candles) * len(sources)
    print(f"sandbox overhead per signal call in scoring: "
          f"{(total_sb - total_in) / n_calls * 1e3:.2f} ms")


def bench_latency(candles: pd.DataFrame, n: int) -> None:
    frame = candles.iloc[:1000]
    with signal_function(TRIVIAL, origin="user") as fn:
        fn(frame)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            fn(frame)
            times.append(time.perf_counter() - started)
    from blofin_pipeline.strategies.base import Strategy

    ns: dict = {}
    exec(compile(TRIVIAL, "trivial", "exec"), ns)  # trusted: our own trivial strategy
    cls = next(v for v in ns.values() if isinstance(v, type) and issubclass(v, Strategy)
               and v is not Strategy)
    inproc = []
    for _ in range(n):
        started = time.perf_counter()
        Strategy.signals(cls(), frame)
        inproc.append(time.perf_counter() - started)
    opens = []
    for _ in range(max(5, n // 20)):
        started = time.perf_counter()
        SandboxedStrategy(TRIVIAL, origin="user").close()
        opens.append(time.perf_counter() - started)
    started = time.perf_counter()
    ForkServer().close()
    server = time.perf_counter() - started

    def ms(values: list[float], q: float) -> float:
        return float(np.quantile(values, q)) * 1e3

    print(f"one call on 1000 bars, trivial strategy ({n} calls): sandboxed median "
          f"{ms(times, 0.5):.2f} ms (p95 {ms(times, 0.95):.2f}), in-process median "
          f"{ms(inproc, 0.5):.2f} ms: {ms(times, 0.5) - ms(inproc, 0.5):.2f} ms per call")
    print(f"opening a sandboxed strategy (fork, lockdown, load, describe): median "
          f"{statistics.median(opens) * 1e3:.1f} ms")
    print(f"starting the fork server (interpreter, numpy/pandas, warm-up, lockdown): "
          f"{server:.2f} s, once per process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    cfg = PipelineConfig()
    candles = window(DEFAULT_SYMBOLS[: args.symbols], args.days, cfg.timeframe)
    bench_scoring(candles, cfg, args.repeat)
    bench_latency(next(iter(candles.values())), args.calls)


if __name__ == "__main__":
    main()
