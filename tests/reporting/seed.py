"""Hand-built rows for the ranking and report tests: strategies, results, models, ensembles."""
from __future__ import annotations

import json
from collections.abc import Sequence

from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.strategies.status import ALWAYS, REGISTERING_STEP, set_status

SYMBOLS = ("BTC-USDT", "ETH-USDT")


def add_strategy(store: Store, name: str, *, version: int = 1, category: str = "trend", status: str = "active",
                 origin: str = "builtin", created_run_date: str | None = None) -> None:
    store.upsert("strategies", [{
        "name": name, "version": version, "category": category, "params": "{}", "param_space": "{}",
        "code": f"# {name}", "code_hash": f"h-{name}-{version}", "status": status, "origin": origin,
        "parent": None, "rationale": None, "created_at": utc_now(), "created_run_date": created_run_date,
        "archived_at": None, "archive_reason": None,
    }], key=("name", "version"))
    # its status from its registration date on (every date for one registered by no run)
    set_status(store, name, version, status, "seeded" if status == "archived" else None,
               run_date=created_run_date or ALWAYS, step=REGISTERING_STEP[origin])


def add_result(store: Store, run_date: str, name: str, symbol: str, score: float | None, *, version: int = 1,
               sharpe: float | None = None, deflated_sharpe: float | None = 0.5, max_drawdown: float | None = -0.1,
               equity: Sequence[float] | None = None, phase: str = "score", oos_bars: int | None = None) -> None:
    curve = None
    if equity is not None:
        curve = json.dumps([[f"2026-01-{i + 1:02d}T00:00:00+00:00", float(e)] for i, e in enumerate(equity)])
    store.upsert("strategy_backtest_results", [{
        "run_date": run_date, "strategy": name, "version": version, "symbol": symbol, "timeframe": "1H",
        "phase": phase, "window_start": "2025-07-01", "window_end": run_date, "score": score,
        "sharpe": sharpe if sharpe is not None else (score if score is not None else None),
        "deflated_sharpe": deflated_sharpe, "sortino": None, "total_return": 0.05, "cagr": None,
        "max_drawdown": max_drawdown, "calmar": None, "win_rate": 0.5, "profit_factor": 1.1, "n_trades": 10,
        "exposure": 0.5, "turnover": 1.0, "params": "{}",
        "metrics": json.dumps({} if oos_bars is None else {"oos_bars": oos_bars}), "equity_curve": curve,
    }], key=("run_date", "strategy", "version", "symbol"))


def add_scored(store: Store, run_date: str, name: str, scores: Sequence[float | None], **kw) -> None:
    """A strategy with one result per symbol (scores[i] on SYMBOLS[i])."""
    reg = {k: kw.pop(k) for k in ("category", "status", "origin", "created_run_date") if k in kw}
    add_strategy(store, name, version=kw.get("version", 1), **reg)
    for symbol, score in zip(SYMBOLS, scores):
        add_result(store, run_date, name, symbol, score, **kw)


def add_model(store: Store, run_date: str, name: str, *, f1: float | None, accuracy: float | None = 0.5,
              log_loss: float | None = 0.69, model_type: str | None = None, symbol: str = "BTC-USDT") -> None:
    store.upsert("ml_model_results", [{
        "run_date": run_date, "model_name": name, "model_type": model_type or name, "symbol": symbol, "version": "1",
        "features": "[]", "params": "{}", "data_hash": "x", "f1": f1, "accuracy": accuracy, "precision": 0.5,
        "recall": 0.5, "roc_auc": 0.5, "log_loss": log_loss, "status": "active", "archive_reason": None,
    }], key=("run_date", "model_name"))


def add_ensemble(store: Store, run_date: str, name: str, *, accuracy: float | None, f1: float | None = 0.5,
                 method: str | None = None, symbol: str = "BTC-USDT") -> None:
    store.upsert("ml_ensembles", [{
        "run_date": run_date, "ensemble_name": name, "method": method or name, "symbol": symbol,
        "version": "1", "members": '["a", "b"]', "f1": f1, "accuracy": accuracy, "status": "active",
        "archive_reason": None,
    }], key=("run_date", "ensemble_name"))
