"""Benchmark: blofin_pipeline's backtester against vectorbt and backtesting.py, side by side.

Runs on 500,000 synthetic one-minute candles (seeded) and prints a table of timings and
ratios:

1. one strategy, signals -> metrics: ours vs vectorbt (target >= 3x) and vs backtesting.py
   (target >= 100x);
2. a 100-combination parameter grid end to end (signals, backtest, metrics): ours vs
   vectorbt (target >= 10x), with the peak memory of each, measured in a fresh subprocess
   per contender (peak RSS, VmHWM, plus the tracemalloc peak), ours < 1 GB.

Every contender gets its fastest documented path: numpy inputs for vectorbt (a tz-aware
pandas index makes it far slower), numba JIT warm-up excluded; backtesting.py with its
documented SmaCross strategy. The strategy is a long-only SMA crossover (long while the
fast SMA is above the slow one), costs 0.06 % per side; our side uses
``fee_model="vectorbt"`` so final values can be cross-checked.

Peers are benchmark-only: run with the bench venv (see bench/README.md). Started with any
other interpreter, the script re-executes itself with /work/main/.venv-bench when vectorbt
is not importable.

    .venv-bench/bin/python bench/backtest.py [--bars 500000] [--combos 100] [--skip-backtesting-py]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"

FEE = 0.0006
# vectorbt rejects orders below ~1e-8 units (MinSizeNotReached): with BTC-like prices a
# cash of 1 would trip it once equity shrinks, so its portfolios start with more cash.
VBT_CASH = 1_000_000.0
FAST, SLOW = 10, 50
GRID_FAST = [5, 8, 10, 12, 15, 20, 25, 30, 40, 50]
GRID_SLOW = [60, 80, 100, 120, 150, 200, 250, 300, 400, 500]
PPY_MINUTE = 365 * 1440


def _ensure_peers() -> None:
    try:
        import vectorbt  # noqa: F401
    except ImportError as err:
        if BENCH_PYTHON.exists() and Path(sys.executable).resolve() != BENCH_PYTHON.resolve():
            os.execv(str(BENCH_PYTHON), [str(BENCH_PYTHON), *sys.argv])
        raise SystemExit(f"vectorbt is not importable; create {BENCH_PYTHON} from bench/requirements.txt") from err


def make_close(n_bars: int, seed: int = 42) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n_bars)))


def make_candles(close: np.ndarray):
    import pandas as pd

    rng = np.random.default_rng(7)
    open_ = np.concatenate([[close[0]], close[:-1]])
    wiggle = np.abs(rng.normal(0.0, 0.0004, close.size))
    index = pd.date_range("2024-01-01", periods=close.size, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame({
        "open": open_, "high": np.maximum(open_, close) * (1 + wiggle),
        "low": np.minimum(open_, close) * (1 - wiggle), "close": close,
        "volume": rng.uniform(1.0, 10.0, close.size),
    }, index=index)


def sma(close: np.ndarray, window: int, csum: np.ndarray | None = None) -> np.ndarray:
    """Simple moving average, NaN for the first window-1 bars (cumsum, O(n); same as vectorbt's)."""
    if csum is None:
        csum = np.cumsum(close)
    out = np.empty(close.size)
    out[:window - 1] = np.nan
    out[window - 1] = csum[window - 1]
    np.subtract(csum[window:], csum[:-window], out=out[window:])
    np.divide(out[window - 1:], window, out=out[window - 1:])
    return out


# ----------------------------------------------------------------------------- contenders
def ours_single(candles):
    from blofin_pipeline.backtest import run_backtest

    close = candles["close"].to_numpy()
    csum = np.cumsum(close)
    with np.errstate(invalid="ignore"):
        pos = (sma(close, FAST, csum) > sma(close, SLOW, csum)).astype(np.float64)
    res = run_backtest(candles, pos, FEE, timeframe="1m", fee_model="vectorbt")
    return res.metrics, float(res.equity.iloc[-1])


def vectorbt_single(close: np.ndarray):
    import vectorbt as vbt

    fast = vbt.MA.run(close, FAST, short_name="fast")
    slow = vbt.MA.run(close, SLOW, short_name="slow")
    entries = fast.ma_above(slow)
    exits = fast.ma_below(slow)
    pf = vbt.Portfolio.from_signals(close, entries, exits, fees=FEE, init_cash=VBT_CASH, freq="1min")
    trades = pf.trades
    metrics = {
        "total_return": pf.total_return(), "cagr": pf.annualized_return(),
        "sharpe": pf.sharpe_ratio(), "sortino": pf.sortino_ratio(),
        "max_drawdown": pf.max_drawdown(), "calmar": pf.calmar_ratio(),
        "win_rate": trades.win_rate(), "profit_factor": trades.profit_factor(),
        "n_trades": trades.count(),
    }
    return metrics, float(pf.final_value()) / VBT_CASH


def backtesting_single(candles):
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def SMA(values, n):
        return sma(np.asarray(values, dtype=np.float64), n)

    class SmaCross(Strategy):
        n1, n2 = FAST, SLOW

        def init(self):
            self.sma1 = self.I(SMA, self.data.Close, self.n1)
            self.sma2 = self.I(SMA, self.data.Close, self.n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()

    df = candles.rename(columns=str.capitalize)
    df.index = df.index.tz_localize(None)
    bt = Backtest(df, SmaCross, cash=1e12, commission=FEE, exclusive_orders=True, finalize_trades=True)
    stats = bt.run()
    return {"total_return": stats["Return [%]"] / 100, "n_trades": stats["# Trades"]}, float(stats["Equity Final [$]"])


def grid_windows(n_combos: int) -> list[tuple[int, int]]:
    combos = [(f, s) for f in GRID_FAST for s in GRID_SLOW]
    return combos[:n_combos]


def ours_grid(close: np.ndarray, n_combos: int) -> dict:
    from blofin_pipeline.backtest import run_backtest_grid

    combos = grid_windows(n_combos)
    csum = np.cumsum(close)
    smas = {w: sma(close, w, csum) for w in sorted({w for c in combos for w in c})}
    pos = np.empty((close.size, len(combos)), dtype=np.int8, order="F")
    with np.errstate(invalid="ignore"):
        for j, (f, s) in enumerate(combos):
            np.greater(smas[f], smas[s], out=pos[:, j], casting="unsafe")
    return run_backtest_grid(close, pos, FEE, 0.0, PPY_MINUTE, fee_model="vectorbt")


def vectorbt_grid(close: np.ndarray, n_combos: int) -> dict:
    import vectorbt as vbt

    combos = grid_windows(n_combos)
    fast = vbt.MA.run(close, [f for f, _ in combos], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in combos], short_name="slow")
    entries = fast.ma_above(slow.ma.values)
    exits = fast.ma_below(slow.ma.values)
    # a (n, 1) price column broadcasts against the (n, combos) signals
    pf = vbt.Portfolio.from_signals(close[:, None], entries, exits, fees=FEE, init_cash=VBT_CASH, freq="1min")
    trades = pf.trades
    return {
        "total_return": pf.total_return().to_numpy(), "cagr": pf.annualized_return().to_numpy(),
        "sharpe": pf.sharpe_ratio().to_numpy(), "sortino": pf.sortino_ratio().to_numpy(),
        "max_drawdown": pf.max_drawdown().to_numpy(), "calmar": pf.calmar_ratio().to_numpy(),
        "win_rate": trades.win_rate().to_numpy(), "profit_factor": trades.profit_factor().to_numpy(),
        "n_trades": trades.count().to_numpy(),
    }


# ----------------------------------------------------------------------------- harness
def best_of(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _max_rss_bytes() -> int:
    """Peak RSS of this process image (VmHWM). getrusage's ru_maxrss would also count the
    parent's peak, which Linux carries across fork + exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe(contender: str, n_bars: int, n_combos: int) -> dict:
    """Child process: time one grid run, then measure its peak memory."""
    close = make_close(n_bars)
    fn = {"ours": ours_grid, "vectorbt": vectorbt_grid}[contender]
    if contender == "vectorbt":
        vectorbt_grid(close[:2000], 2)  # numba JIT warm-up, excluded
    else:
        ours_grid(close[:2000], 2)
    rss_before = _max_rss_bytes()
    t0 = time.perf_counter()
    out = fn(close, n_combos)
    seconds = time.perf_counter() - t0
    rss_peak = _max_rss_bytes()
    tracemalloc.start()
    fn(close, n_combos)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "rss_peak": rss_peak, "rss_before": rss_before, "traced_peak": traced_peak,
            "total_return": np.asarray(out["total_return"], dtype=float).tolist()}


def run_probe(contender: str, n_bars: int, n_combos: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--probe", contender, "--bars", str(n_bars), "--combos", str(n_combos)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} probe failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 1 else f"{seconds:9.2f} s "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500_000)
    parser.add_argument("--combos", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--skip-backtesting-py", action="store_true")
    parser.add_argument("--probe", choices=["ours", "vectorbt"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:  # child process: import only what the contender needs
        print(json.dumps(probe(args.probe, args.bars, args.combos)))
        return
    _ensure_peers()

    import backtesting
    import pandas as pd
    import vectorbt as vbt

    close = make_close(args.bars)
    candles = make_candles(close)
    print(f"bench/backtest.py: {args.bars:,} one-minute candles, SMA({FAST},{SLOW}) long-only, fee {FEE}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"vectorbt {vbt.__version__}, backtesting.py {backtesting.__version__}")

    # warm-up: numba JIT for vectorbt, imports/caches for everyone
    ours_single(candles.iloc[:5000])
    vectorbt_single(close[:5000])

    rows = []
    # Interleaved repeats, best of each: load on a shared machine hits both alike.
    t_ours = t_vbt = float("inf")
    for _ in range(args.repeats):
        t, (m_ours, v_ours) = best_of(lambda: ours_single(candles), 1)
        t_ours = min(t_ours, t)
        t, (m_vbt, v_vbt) = best_of(lambda: vectorbt_single(close), 1)
        t_vbt = min(t_vbt, t)
    rows.append(("single strategy: ours", t_ours, "", ""))
    rows.append(("single strategy: vectorbt", t_vbt, f"{t_vbt / t_ours:6.1f}x", ">= 3x"))
    agree = abs(v_ours / v_vbt - 1)
    if not args.skip_backtesting_py:
        t_bt, (m_bt, v_bt) = best_of(lambda: backtesting_single(candles), 1)
        rows.append(("single strategy: backtesting.py", t_bt, f"{t_bt / t_ours:6.1f}x", ">= 100x"))

    t_grid_ours, grid = best_of(lambda: ours_grid(close, args.combos), max(1, args.repeats // 2))
    probe_ours = run_probe("ours", args.bars, args.combos)
    probe_vbt = run_probe("vectorbt", args.bars, args.combos)
    rows.append((f"{args.combos}-combo grid: ours (in process)", t_grid_ours, "", ""))
    rows.append((f"{args.combos}-combo grid: ours (fresh process)", probe_ours["seconds"], "", ""))
    rows.append((f"{args.combos}-combo grid: vectorbt (fresh process)", probe_vbt["seconds"],
                 f"{probe_vbt['seconds'] / probe_ours['seconds']:6.1f}x", ">= 10x"))

    print()
    print(f"{'contender':48} {'time':>12} {'peer/ours':>10} {'target':>8}")
    print("-" * 82)
    for name, seconds, ratio, target in rows:
        print(f"{name:48} {fmt_s(seconds):>12} {ratio:>10} {target:>8}")
    print()
    print(f"{'grid peak memory (fresh process)':48} {'peak RSS':>12} {'RSS growth':>12} {'tracemalloc':>12}")
    print("-" * 88)
    for name, pr in (("ours", probe_ours), ("vectorbt", probe_vbt)):
        print(f"{name:48} {pr['rss_peak'] / 2**20:9.0f} MB {(pr['rss_peak'] - pr['rss_before']) / 2**20:9.0f} MB"
              f" {pr['traced_peak'] / 2**20:9.0f} MB")
    print()
    print("cross-checks:")
    print(f"  single strategy final value: ours {v_ours:.12g}, vectorbt {v_vbt:.12g} (relative diff {agree:.2e})")
    print(f"  single strategy trades: ours {m_ours['n_trades']}, vectorbt {int(m_vbt['n_trades'])}; "
          f"sharpe ours {m_ours['sharpe']:.6g}, vectorbt {m_vbt['sharpe']:.6g}")
    if not args.skip_backtesting_py:
        print(f"  backtesting.py: {m_bt['n_trades']} trades, return {m_bt['total_return']:.6g} "
              "(whole units, commission on both sides)")
    grid_diff = np.max(np.abs((1 + np.asarray(probe_ours["total_return"])) /
                              (1 + np.asarray(probe_vbt["total_return"])) - 1))
    print(f"  grid final values, max relative diff ours vs vectorbt: {grid_diff:.2e}")
    print(f"  our grid peak RSS < 1 GB: {'yes' if probe_ours['rss_peak'] < 2**30 else 'NO'}")


if __name__ == "__main__":
    main()
