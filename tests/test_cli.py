"""The command line as operators use it: exit codes and what it prints."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from blofin_pipeline import steps
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
                            config=PipelineConfig(symbols=("BTC-USDT",), history_days=60, score_window_days=40),
                            db_url=db, workspace=tmp_path)
    r = cli("leaderboard", db=db)
    assert r.returncode == 0 and "no scored strategies yet" in r.stdout
    steps.ingest_candles(ctx)
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "BTC-USDT", "--days", "40", "--json", db=db)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["strategy"] == "rsi_reversion" and result["n_trades"] >= 0
    assert {"sharpe", "max_drawdown", "deflated_sharpe", "score", "folds"} <= set(result)
    r = cli("backtest", str(CORPUS / "lookahead_shift.py"), "--symbol", "BTC-USDT", "--days", "40", db=db)
    assert r.returncode == 1 and "lookahead" in r.stdout
    r = cli("backtest", str(BUILTIN / "rsi_reversion.py"), "--symbol", "DOGE-USDT", db=db)
    assert r.returncode == 2 and "no stored DOGE-USDT 1H candles" in r.stderr
    steps.score_strategies(ctx)
    steps.rank_and_update(ctx)
    r = cli("leaderboard", "--json", db=db)
    board = json.loads(r.stdout)
    assert len(board) >= 12 and board[0]["rank"] == 1
    assert board[0]["score"] >= board[-1]["score"]
