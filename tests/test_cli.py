"""The command line as operators use it: exit codes and what it prints."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from blofin_pipeline import steps
from blofin_pipeline.backtest import stats
from blofin_pipeline.config import PipelineConfig, RunContext

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "strategies" / "corpus"
BUILTIN = ROOT / "blofin_pipeline" / "strategies" / "builtin"


def cli(*args: str, db: str | None = None) -> subprocess.CompletedProcess:
    pre = ["--db", db] if db else []
    return subprocess.run([sys.executable, "-m", "blofin_pipeline", *pre, *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_check_strategy_accepts_a_builtin():
    r = cli("check-strategy", str(BUILTIN / "ema_cross.py"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["accepted"] is True and report["name"] == "ema_cross"


@pytest.mark.parametrize("file, reason", [
    ("lookahead_shift.py", "lookahead:"),
    ("import_subprocess.py", "static:"),
    ("dunder_import.py", "static:"),
])
def test_check_strategy_rejects_with_reasons_and_exit_1(file, reason):
    r = cli("check-strategy", str(CORPUS / file))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REJECTED" in r.stdout and reason in r.stdout


def test_check_strategy_on_a_missing_file_is_an_error_not_a_verdict(tmp_path):
    r = cli("check-strategy", str(tmp_path / "nope.py"))
    assert r.returncode == 2 and "nope.py" in r.stderr


def test_backtest_and_leaderboard_on_stored_candles(tmp_path):
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ctx = RunContext.create(logical_date="2026-04-10", data_end="2026-04-10",
                            config=PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=40,
                                                  wf_train_days=20),
                            db_url=db, workspace=tmp_path)
    r = cli("leaderboard", db=db)
    assert r.returncode == 0 and "no scored strategies yet" in r.stdout
    steps.ingest_candles(ctx)
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "BTC-USDT", "--days", "40", "--train-days", "20", "--json", db=db)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["strategy"] == "rsi_reversion" and result["out_of_sample"]["n_trades"] >= 0
    assert result["data"] == {"sources": ["sample"], "synthetic": True}
    window, oos = result["window"], result["out_of_sample"]
    assert {"sharpe", "max_drawdown", "deflated_sharpe", "score", "buy_and_hold_return"} <= set(oos)
    assert window["start"] < oos["start"] < oos["end"] == window["end"]  # the folds' test parts only
    assert oos["bars"] < window["bars"] == 40 * 24 and oos["folds"] == len(result["folds"])
    # power: a fresh database has recorded no trial, the file is the only one (N = 1)
    power = result["power"]
    assert (power["n_trials"], power["oos_bars"]) == (1, oos["bars"])
    assert power["required_sharpe_annual"] == pytest.approx(
        stats.required_sharpe(1, oos["bars"]) * math.sqrt(8760))
    assert result["walk_forward"] == {"train_days": 20, "folds": 8, "anchored": False}
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "BTC-USDT", "--days", "40", "--train-days", "20",
            db=db)
    assert "Power: N = 1 trials" in r.stdout and "(MinTRL)" in r.stdout
    assert "data: SYNTHETIC sample market" in r.stdout.splitlines()[0]
    assert r.stdout.index("Window (") < r.stdout.index("Out of sample (") < r.stdout.index("  sharpe")
    r = cli("backtest", str(CORPUS / "lookahead_shift.py"), "--symbol", "BTC-USDT", "--days", "40", "--train-days",
            "20", db=db)
    assert r.returncode == 1 and "lookahead" in r.stdout
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "DOGE-USDT", db=db)
    assert r.returncode == 2 and "no stored DOGE-USDT 1H candles" in r.stderr
    steps.score_strategies(ctx)
    steps.rank_and_update(ctx)
    r = cli("leaderboard", "--json", db=db)
    view = json.loads(r.stdout)
    assert view["run_date"] == "2026-04-10" and view["ranked"] is True
    board = view["rows"]
    assert len(board) >= 12 and board[0]["rank"] == 1
    assert board[0]["score"] >= board[-1]["score"]
    # N: one series per version scored on its one symbol; each row's track records at that N
    assert view["power"]["n_trials"] == len(board) and view["power"]["oos_bars"] == oos["bars"]
    assert all(set(row) >= {"min_trl_days", "dsr_trl_days"} for row in board)
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "BTC-USDT", "--days", "40", "--train-days", "20",
            "--json", db=db)
    assert json.loads(r.stdout)["power"]["n_trials"] == len(board) + 1  # every recorded series, and the file
    r = cli("leaderboard", db=db)
    assert r.stdout.splitlines()[1].startswith(f"Power: N = {len(board)} trials")
    assert r.stdout.splitlines()[0].startswith("Leaderboard of 2026-04-10 (the ranking of that date); data: SYNTHETIC "
                                               "sample market")


def test_add_strategy_registers_a_user_candidate_that_the_next_run_gates(tmp_path, monkeypatch):
    canary = "sk-ant-api03-CANARYaddstrategy0123456789abcdef"
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", f"anthropic://:{canary}@")
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ctx = RunContext.create(logical_date="2026-04-10", data_end="2026-04-10",
                            config=PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=40,
                                                  wf_train_days=20,
                                                  n_designs=0, n_tunes=0, ml_enabled=False),
                            db_url=db, workspace=tmp_path)
    steps.ingest_candles(ctx)
    mine = tmp_path / "my_trend.py"
    mine.write_text((CORPUS / "clean_sma_trend.py").read_text().replace("clean_sma_trend", "my_trend"))
    hostile = tmp_path / "hostile.py"
    hostile.write_text((CORPUS / "hostile_openfile_environ.py").read_text().replace("{{PID}}", "self"))
    r = cli("add-strategy", str(mine), db=db)
    assert r.returncode == 0 and "registered my_trend@1 (trend) as a candidate" in r.stdout, r.stdout + r.stderr
    r = cli("add-strategy", str(hostile), db=db)
    assert r.returncode == 0 and "static check will reject it" in r.stdout, r.stdout + r.stderr
    r = cli("add-strategy", str(BUILTIN / "ema_cross.py"), db=db)
    assert r.returncode == 1 and "name of a built-in strategy" in r.stdout
    r = cli("add-strategy", str(CORPUS / "syntax_error.py"), db=db)
    assert r.returncode == 1 and "not registered: " in r.stdout and "syntax error" in r.stdout

    from blofin_pipeline.store import open_store
    from blofin_pipeline.strategies.status import candidates_on

    with open_store(db) as store:
        candidates = candidates_on(store, "2026-04-10")  # a file added outside any run: any next run
        assert {(c.name, c.origin) for c in candidates} == {("my_trend", "user"),
                                                            ("hostile_openfile_environ", "user")}
    result = steps.backtest_candidates(ctx)
    assert result["accepted"] == ["my_trend@1"]
    assert list(result["rejected"]) == ["hostile_openfile_environ@1"]
    with open_store(db) as store:
        rows = store.query("SELECT name, status, archive_reason FROM strategies WHERE origin = 'user'")
        dump = json.dumps(store.query("SELECT * FROM strategies")) + json.dumps(
            store.query("SELECT * FROM knowledge_base")) + json.dumps(store.query("SELECT * FROM pipeline_runs"))
    assert {r["name"]: r["status"] for r in rows} == {"my_trend": "active", "hostile_openfile_environ": "archived"}
    reason = next(r["archive_reason"] for r in rows if r["status"] == "archived")
    assert reason.startswith("rejected by checks: static: ")
    assert canary not in dump
