"""Benchmark: the scoring steps (score_strategies, backtest_candidates) at 3 and 30 symbols.

Runs the steps directly (no Airflow) on the embedded default (synthetic 1H market, 400 days
of history, 180-day scoring window, offline design and tune so there are candidates) in a
fresh workspace per size, and prints per-step seconds. Each size runs in its own
subprocess, so ``--root`` can time another checkout (e.g. the code before a change) in the
same run and the two are compared side by side:

    python bench/scoring_scale.py [--symbols 3 30] [--root /work/main]

score_strategies runs every chunk of the plan one after the other (as one worker would):
the figure is the sum over chunks; the number of chunks is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_FIXED_CHUNKS = 2  # the DAG's fixed chunk count before plan_scoring existed
STEPS = ("ingest_candles", "score_strategies", "design_strategies", "tune_strategies", "backtest_candidates")


def symbols(n: int) -> tuple[str, ...]:
    named = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
    return (named + tuple(f"SYN{i:02d}-USDT" for i in range(max(0, n - len(named)))))[:n]


def run_one(n_symbols: int) -> dict:
    """One size in this process: per-step seconds (imports the code on sys.path[0])."""
    from blofin_pipeline import steps
    from blofin_pipeline.config import PipelineConfig, RunContext
    from blofin_pipeline.steps.llm_day import run_batched

    tmp = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    config = PipelineConfig(symbols=symbols(n_symbols), llm_mode="offline", ml_enabled=False)
    ctx = RunContext.create(logical_date="2026-06-01", data_end="2026-06-01", config=config,
                            db_url=f"sqlite:///{tmp / 'db.sqlite'}", workspace=tmp)
    times: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        return out

    timed("ingest_candles", lambda: steps.ingest_candles(ctx))
    plan = getattr(steps, "plan_scoring", None)
    chunks = timed("plan_scoring", lambda: plan(ctx))["chunks"] if plan else \
        [{"chunk": i, "n_chunks": OLD_FIXED_CHUNKS} for i in range(OLD_FIXED_CHUNKS)]
    for kwargs in chunks:
        timed("score_strategies", lambda kw=kwargs: steps.score_strategies(ctx, **kw))
    timed("design_strategies", lambda: run_batched(steps.design_strategies, ctx, llm=None))
    timed("tune_strategies", lambda: run_batched(steps.tune_strategies, ctx, llm=None))
    cand = timed("backtest_candidates", lambda: steps.backtest_candidates(ctx))
    return {"symbols": n_symbols, "chunks": len(chunks), "candidates": cand["candidates"],
            "seconds": times, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(root: Path, n_symbols: int) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(root)!r}); sys.path.insert(1, {str(REPO / 'bench')!r}); "
            f"import scoring_scale; print(json.dumps(scoring_scale.run_one({n_symbols})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    if out.returncode:
        raise SystemExit(f"{root} at {n_symbols} symbols failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, nargs="+", default=[3, 30])
    ap.add_argument("--root", type=Path, help="another checkout to time side by side (e.g. the code before)")
    args = ap.parse_args()
    roots = [("this", REPO)] + ([("other", args.root.resolve())] if args.root else [])
    for n in args.symbols:
        results = {label: measure(root, n) for label, root in roots}
        print(f"\n{n} symbols, 1H, 180-day window" + "".join(
            f"; {label}: {r['chunks']} scoring chunk(s), {r['candidates']} candidates, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB" for label, r in results.items()))
        print(f"{'step':<22}" + "".join(f"{label + ' (s)':>14}" for label, _ in roots)
              + ("   other/this" if args.root else ""))
        for name in ("plan_scoring", *STEPS):
            vals = [results[label]["seconds"].get(name) for label, _ in roots]
            cells = "".join(f"{v:>14.2f}" if v is not None else f"{'-':>14}" for v in vals)
            ratio = f"   {vals[1] / vals[0]:.2f}x" if args.root and vals[0] and vals[1] else ""
            print(f"{name:<22}{cells}{ratio}")


if __name__ == "__main__":
    main()
