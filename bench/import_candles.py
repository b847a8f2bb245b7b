"""Import a large candle CSV through `import-candles` and measure it while another process writes.

    python bench/import_candles.py                       # 2,000,000 one-minute bars (~125 MB)
    python bench/import_candles.py --rows 200000         # quick
    python bench/import_candles.py --root /path/to/other/checkout   # measure another version

Prints the import's wall time and peak RSS (getrusage of the child), and what a parallel
writer saw: a process upserting a `pipeline_runs` row every 0.2 s for the whole import, with
the store's own 60 s busy timeout, reports its slowest write and its failures ("database is
locked"). The CSV is an AR(1) random walk written once to --csv (default: a temp dir).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MINUTE_MS = 60_000
WRITER = r"""
import sys, time
from pathlib import Path
from blofin_pipeline.store import open_store
from blofin_pipeline.store.runs import upsert_step_row
url, stop = sys.argv[1], Path(sys.argv[2])
worst, failures, writes = 0.0, [], 0
with open_store(url) as store:
    while not stop.exists():
        t0 = time.monotonic()
        try:
            upsert_step_row(store, {"run_date": "2026-01-01", "step": f"writer_{writes % 5}", "status": "success",
                                    "started_at": "t", "ended_at": "t", "duration_s": 0.0, "error": None,
                                    "summary": None})
            writes += 1
        except Exception as err:
            failures.append(f"{type(err).__name__}: {str(err)[:80]}")
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.2)
print(f"{writes} {worst:.3f} {len(failures)} {failures[:1]}")
"""


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """An AR(1) random walk of one-minute bars ending a day before now, in 100k-row blocks."""
    rng = np.random.default_rng(seed)
    end = (int(time.time() * 1000) // MINUTE_MS - 1440) * MINUTE_MS
    start = end - rows * MINUTE_MS
    price, prev = 100.0, 0.0
    with path.open("w") as fh:
        fh.write("ts,open,high,low,close,volume\n")
        for lo in range(0, rows, 100_000):
            n = min(100_000, rows - lo)
            eps = rng.standard_normal(n) * 0.0008
            ret = np.empty(n)
            for i in range(n):  # AR(1): r_t = 0.1 r_{t-1} + e_t
                prev = 0.1 * prev + eps[i]
                ret[i] = prev
            close = price * np.exp(np.cumsum(ret))
            open_ = np.concatenate(([price], close[:-1]))
            high = np.maximum(open_, close) * (1 + np.abs(rng.standard_normal(n)) * 0.0003)
            low = np.minimum(open_, close) * (1 - np.abs(rng.standard_normal(n)) * 0.0003)
            vol = rng.gamma(2.0, 5.0, n)
            ts = start + (lo + np.arange(n)) * MINUTE_MS
            block = np.column_stack([ts, open_, high, low, close, vol])
            np.savetxt(fh, block, fmt=["%d", "%.6f", "%.6f", "%.6f", "%.6f", "%.4f"], delimiter=",")
            price = float(close[-1])


def run(root: Path, csv: Path, db: Path) -> None:
    env = dict(os.environ, PYTHONPATH=f"{root}:{root / 'plugins'}")
    run_in = {"env": env, "cwd": root}  # `python -m` puts the working directory first on sys.path
    url = f"sqlite:///{db}"
    subprocess.run([sys.executable, "-m", "blofin_pipeline", "--db", url, "init-db"], **run_in, check=True,
                   capture_output=True)
    stop = db.with_suffix(".stop")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, str(stop)], **run_in, stdout=subprocess.PIPE,
                              text=True)
    time.sleep(1.0)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "blofin_pipeline", "--db", url, "import-candles",
                             "--symbol", "BENCH-USDT", "--timeframe", "1m", str(csv)], **run_in,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    # communicate() reaped the import: the children's peak RSS is now the larger of init-db's
    # and the import's (the writer is still running, so not counted).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stop.touch()
    writer_out, _ = writer.communicate(timeout=120)
    print(f"code: {root}")
    print(f"file: {csv} ({csv.stat().st_size / 1e6:.0f} MB)")
    print(f"import: exit {proc.returncode} in {wall:.1f} s, peak RSS {peak_mb:.0f} MB")
    print(f"  stdout: {out.strip()[:300]}")
    if err.strip():
        print(f"  stderr: {err.strip()[-300:]}")
    writes, worst, failures, first = writer_out.strip().split(" ", 3)
    print(f"parallel writer: {writes} writes, slowest {float(worst):.2f} s, {failures} failed {first}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--csv", type=Path, help="CSV to (re)use; written when missing")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code runs the import")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = args.csv or Path(tmp) / f"candles_{args.rows}.csv"
        if not csv.exists():
            t0 = time.monotonic()
            write_csv(csv, args.rows)
            print(f"wrote {csv} in {time.monotonic() - t0:.0f} s")
        run(args.root.resolve(), csv, Path(tmp) / "bench.db")


if __name__ == "__main__":
    main()
