from __future__ import annotations

import subprocess
import sys

import pytest

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
