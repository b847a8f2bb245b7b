from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.csv_import import MAX_PROBLEMS, import_csv
from blofin_pipeline.store import open_store

HEADER = "ts,open,high,low,close,volume\n"


def run_cli(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blofin_pipeline", "--db", db, *args],
                          capture_output=True, text=True, timeout=120)


def test_import_epoch_ms_and_iso_through_validation(sqlite_url, tmp_path):
    ms = tmp_path / "a.csv"
    ms.write_text(HEADER + "1700002800000,10,11,9,10.5,5\n1700006400000,10.5,12,10,11,6\n")
    iso = tmp_path / "b.csv"
    # Out of order, a duplicate and a gap of two bars: sorted, dropped, reported.
    iso.write_text(HEADER + "2023-11-15T04:00:00Z,11,11.5,10.8,11.2,3\n2023-11-14T23:00:00+00:00,10,11,9,10.5,5\n"
                   "2023-11-15T04:00:00Z,11,11.5,10.8,11.2,3\n")
    r = run_cli("import-candles", "--symbol", "BTC-USDT", "--timeframe", "1H", str(ms), db=sqlite_url)
    assert r.returncode == 0, r.stderr
    assert "2 valid rows of 2" in r.stdout
    r = run_cli("import-candles", "--symbol", "BTC-USDT", "--timeframe", "1H", str(iso), db=sqlite_url)
    assert r.returncode == 0, r.stderr
    assert "1 duplicates dropped" in r.stdout
    assert "gap: 3 missing bars from 2023-11-15T01:00:00+00:00 to 2023-11-15T03:00:00+00:00" in r.stdout
    with open_store(sqlite_url) as store:
        rows = store.query("SELECT ts, source FROM candles ORDER BY ts")
    hour = 3_600_000
    assert [r["ts"] for r in rows] == [1700002800000, 1700002800000 + hour, 1700002800000 + 5 * hour]
    assert {r["source"] for r in rows} == {"csv"}


@pytest.mark.parametrize(
    "body, message",
    [
        ("ts,open,high,low,close\n1700002800000,1,1,1,1\n", "missing columns ['volume']"),
        (HEADER + "1700002800,10,11,9,10.5,5\n", "looks like seconds"),
        (HEADER + "yesterday,10,11,9,10.5,5\n", "line 2: ts 'yesterday'"),
        (HEADER + "1700002800000,10,eleven,9,10.5,5\n", "line 2: high 'eleven' is not a number"),
        (HEADER + "1700002800000,10,11,9,10.5,5\n1700006400000,10,9,9.5,10,5\n", "OHLC inconsistent"),
        # Bounded, clear errors for malformed input, never a traceback:
        (HEADER + "99999999999999999999999999,10,11,9,10.5,5\n", "line 2: ts '99999999999999999999999999' is out of range"),
        (HEADER + "2100-01-01T00:00:00Z,10,11,9,10.5,5\n", "line 2: ts '2100-01-01T00:00:00Z' is out of range"),
        (HEADER + "2099-06-01T00:00:00Z,10,11,9,10.5,5\n", "closes after now"),
        (HEADER.replace(",", ";") + "1700002800000;10;11;9;10.5;5\n", "is it ';'-separated?"),
        (HEADER + "1700002800000,10,11,9,10.5,5,7\n", "line 2: more fields than the header's 6"),
        (HEADER + "1700002800000,10,11,9,10.5,5\n1700002800000,10,11,9,10.6,5\n",
         "line 3: conflicting duplicate candles (same time, different values) at 2023-11-14T23:00:00+00:00"),
        ("", "empty file"),
    ],
)
def test_bad_csv_is_refused_with_the_reason_and_stores_nothing(sqlite_url, tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    r = run_cli("import-candles", "--symbol", "ETH-USDT", "--timeframe", "1H", str(path), db=sqlite_url)
    assert r.returncode == 2
    assert message in r.stderr
    with open_store(sqlite_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == 0


def test_a_directory_or_a_binary_file_is_refused_clearly(sqlite_url, tmp_path):
    r = run_cli("import-candles", "--symbol", "ETH-USDT", "--timeframe", "1H", str(tmp_path), db=sqlite_url)
    assert r.returncode == 2 and "is a directory" in r.stderr and "Traceback" not in r.stderr
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    r = run_cli("import-candles", "--symbol", "ETH-USDT", "--timeframe", "1H", str(binary), db=sqlite_url)
    assert r.returncode == 2 and "not a readable UTF-8 text file" in r.stderr and "Traceback" not in r.stderr


def test_every_problem_is_listed_with_its_line_up_to_a_limit(sqlite_url, tmp_path):
    good = [f"{1700002800000 + i * 3_600_000},10,11,9,10.5,5" for i in range(40)]
    lines = list(good)
    for i in range(0, 40, 2):          # 20 rows with a bad high ...
        lines[i] = lines[i].replace(",11,", ",x,")
    lines[1] = "soon,10,11,9,10.5,5"   # ... and more problems beyond the first
    lines += ["1700002800000,10,11,9,10.5,-1"] * 5
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    r = run_cli("import-candles", "--symbol", "ETH-USDT", "--timeframe", "1H", str(path), db=sqlite_url)
    assert r.returncode == 2
    listed = [ln for ln in r.stderr.splitlines() if ln.startswith("  line ")]
    assert "26 problem(s), nothing imported" in r.stderr
    assert len(listed) == MAX_PROBLEMS and "... and 6 more" in r.stderr
    assert listed[0] == "  line 2: high 'x' is not a number"
    assert listed[1] == "  line 3: ts 'soon' is neither epoch ms nor ISO 8601 (or out of range)"
    with open_store(sqlite_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == 0


def _csv(tmp_path, name: str, rows: list[tuple]) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


T0 = 1700002800000
HOUR = 3_600_000
BARS = [(T0 + i * HOUR, 10 + i, 11 + i, 9 + i, 10.5 + i, 5) for i in range(6)]


def _stored(store, symbol="BTC-USDT") -> list[tuple]:
    rows = store.query("SELECT ts, open, high, low, close, volume, source FROM candles WHERE symbol = :s ORDER BY ts",
                       {"s": symbol})
    return [tuple(r.values()) for r in rows]


def test_reimport_counts_identical_rows_and_refuses_different_values_unless_replace(db_url, tmp_path):
    with open_store(db_url) as store:
        first = import_csv(store, _csv(tmp_path, "a.csv", BARS[:4]), "BTC-USDT", "1H")
        assert (first.written, first.identical) == (4, 0)
        before = _stored(store)
        again = import_csv(store, _csv(tmp_path, "b.csv", BARS[:4]), "BTC-USDT", "1H")
        assert (again.written, again.identical) == (0, 4)
        changed = [BARS[0], (*BARS[1][:4], 10.75, 5), (*BARS[2][:4], 11.25, 5), BARS[3], BARS[4]]
        with pytest.raises(DataValidationError, match=r"2 of the file's 5 bars differ .* line 3, "
                           r"2023-11-15T00:00:00\+00:00: close 10.75 \(stored 11.5\)\); 2 identical bars are fine"
                           r".*--replace"):
            import_csv(store, _csv(tmp_path, "c.csv", changed), "BTC-USDT", "1H")
        assert _stored(store) == before  # nothing written, not even the new bar
        replaced = import_csv(store, _csv(tmp_path, "c.csv", changed), "BTC-USDT", "1H", replace=True)
        assert (replaced.written, replaced.replaced, replaced.identical) == (3, 2, 2)
        assert [r[4] for r in _stored(store)] == [10.5, 10.75, 11.25, 13.5, 14.5]


def test_a_series_never_mixes_sources(db_url, tmp_path):
    with open_store(db_url) as store:
        store.upsert("candles", [{"symbol": "BTC-USDT", "timeframe": "1H", "ts": T0 - HOUR * k, "open": 1.0,
                                  "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "source": "sample",
                                  "ingested_at": "t"} for k in (1, 2)], key=("symbol", "timeframe", "ts"))
        path = _csv(tmp_path, "a.csv", BARS)
        with pytest.raises(DataValidationError, match=r"BTC-USDT 1H already holds 2 'sample' candles "
                           r"\(2023-11-14T21:00 .. 2023-11-14T22:00\); a series never mixes sources.*--replace"):
            import_csv(store, path, "BTC-USDT", "1H")
        assert import_csv(store, path, "ETH-USDT", "1H").written == 6  # another series is fine
        report = import_csv(store, path, "BTC-USDT", "1H", replace=True)
        assert report.deleted == {"sample": 2} and report.written == 6
        assert {r[-1] for r in _stored(store)} == {"csv"} and len(_stored(store)) == 6


def test_a_gap_is_closed_when_its_bars_arrive(db_url, tmp_path):
    with open_store(db_url) as store:
        holed = import_csv(store, _csv(tmp_path, "a.csv", [BARS[0], BARS[5]]), "BTC-USDT", "1H")
        assert [(g.start, g.missing_bars) for g in holed.gaps] == [(T0 + HOUR, 4)]
        part = import_csv(store, _csv(tmp_path, "b.csv", BARS[1:3]), "BTC-USDT", "1H")
        assert part.gaps_closed == 1
        gaps = store.query("SELECT gap_start, missing_bars, closed_at FROM candle_gaps ORDER BY gap_start")
        assert [(g["gap_start"], g["missing_bars"], g["closed_at"] is None) for g in gaps] == [
            (T0 + HOUR, 4, False), (T0 + 3 * HOUR, 2, True)]  # closed, and what still misses is open
        import_csv(store, _csv(tmp_path, "c.csv", BARS[3:5]), "BTC-USDT", "1H")
        assert store.query("SELECT COUNT(*) AS n FROM candle_gaps WHERE closed_at IS NULL") == [{"n": 0}]


def _big_csv(tmp_path, n: int) -> Path:
    path = tmp_path / f"big_{n}.csv"
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    ts = T0 - 60_000 * 1_000_000 + np.arange(n) * 60_000
    frame = pd.DataFrame({"ts": ts, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                          "volume": 1.0})
    frame.to_csv(path, index=False)
    return path


def test_import_memory_is_flat_in_file_size(sqlite_url, tmp_path):
    peaks = {}
    for n in (8_000, 32_000):
        path = _big_csv(tmp_path, n)
        with open_store(sqlite_url) as store:
            tracemalloc.start()
            import_csv(store, path, f"M{n}-USDT", "1m", chunk_rows=2_000, page_rows=2_000)
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peaks[32_000] < 1.3 * peaks[8_000], peaks


def test_import_writes_in_short_transactions_and_a_parallel_writer_is_not_blocked(sqlite_url, tmp_path, monkeypatch):
    from blofin_pipeline.store.connection import Store

    path = _big_csv(tmp_path, 60_000)
    changes: list[int] = []
    original = Store.transaction

    @contextlib.contextmanager
    def counted(self, *args, **kwargs):
        before = self._conn.total_changes
        with original(self, *args, **kwargs):
            yield
        if kwargs.get("lock", True):  # writes to the data database (not to the TEMP staging table)
            changes.append(self._conn.total_changes - before)

    monkeypatch.setattr(Store, "transaction", counted)
    db_path = sqlite_url[len("sqlite:///"):]
    failures, stop = [], threading.Event()

    def writer():  # another process's writes, with a 2 s busy timeout
        conn = sqlite3.connect(db_path, timeout=2.0, isolation_level=None)
        while not stop.is_set():
            try:
                conn.execute("INSERT INTO pipeline_runs (run_date, step, status, started_at) VALUES "
                             "('2026-01-01', 'w', 'running', 't') ON CONFLICT (run_date, step) DO UPDATE SET status = 'x'")
            except sqlite3.OperationalError as err:
                failures.append(str(err))
            time.sleep(0.01)
        conn.close()

    with open_store(sqlite_url) as store:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            report = import_csv(store, path, "BIG-USDT", "1m", page_rows=5_000)
        finally:
            stop.set()
            thread.join()
        assert report.written == 60_000 and store.scalar("SELECT COUNT(*) AS n FROM candles") == 60_000
    assert max(changes) <= 5_000, max(changes)
    assert not failures, failures[:3]
