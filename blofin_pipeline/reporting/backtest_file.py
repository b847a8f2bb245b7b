"""The CLI ``backtest`` of a strategy file: checked, then scored out of sample exactly as
the DAG scores a version (same walk-forward geometry, metrics, trial count and DSR rule),
with the power of that figure (N, T, the Sharpe needed for DSR 0.95, its track records).

The file is one more trial: N is every (item, symbol) out-of-sample series the database
records (`store.registry.trial_count` after its last date) plus the file's own series.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

BACKTEST_METRICS = ("score", "sharpe", "deflated_sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar",
                    "win_rate", "profit_factor", "n_trades", "exposure", "turnover")
FILE_ITEM = "file:{name}"  # the trial item of a backtested file, never recorded


def backtest_code(code: str, origin: str, *, symbol: str, timeframe: str, fee: float, slippage: float, db_url: str,
                  days: int, geometry: Mapping[str, Any]) -> dict[str, Any]:
    """{"accepted": False, "reasons", "text"} or {"accepted": True, "result": {...}}; ``geometry``:
    walk-forward config fields (wf_train_days, wf_folds, wf_anchored) over the defaults."""
    from blofin_pipeline.backtest.scoring import score_one
    from blofin_pipeline.config import PipelineConfig, RunContext
    from blofin_pipeline.exceptions import DataValidationError
    from blofin_pipeline.market.candles import last_candle_ts
    from blofin_pipeline.market.window import load_window, score_window, window_label
    from blofin_pipeline.store import open_store
    from blofin_pipeline.store.registry import LAST_DATE, trial_count
    from blofin_pipeline.strategies import check_strategy
    from blofin_pipeline.strategies.gate import gate_frame
    from blofin_pipeline.strategies.runner import signal_function
    from blofin_pipeline.timeframes import timeframe_ms

    with open_store(db_url) as store:
        last = last_candle_ts(store, symbol, timeframe)
        if last is None:
            raise DataValidationError(f"no stored {symbol} {timeframe} candles: run the DAG or import-candles first")
        end = pd.Timestamp(last, unit="ms", tz="UTC") + pd.Timedelta(milliseconds=timeframe_ms(timeframe))
        config = PipelineConfig(symbols=(symbol,), timeframe=timeframe, fee=fee, slippage=slippage,
                                score_window_days=days, **geometry)
        ctx = RunContext.create(logical_date=end, data_end=end, config=config, db_url=db_url, workspace=Path("."))
        candles = load_window(ctx, store)[symbol]
        frame, _ = gate_frame(candles)  # the window, or the check frame if it is too short (logged)
        report = check_strategy(code, frame, origin=origin, version=0, wf_candidates=config.wf_candidates)
        if not report.accepted:
            return {"accepted": False, "reasons": report.reasons, "text": report.to_text()}
        with signal_function(code, origin="user", label=origin) as fn:  # in the sandbox
            name = fn.name
            n_trials = trial_count(store, LAST_DATE, [(FILE_ITEM.format(name=name), 1)])
            row = score_one(ctx, name, 0, fn, symbol, candles, n_total_trials=n_trials, phase="candidate",
                            window=score_window(ctx))
        data = window_label(ctx, store)
    return {"accepted": True, "result": _result(name, symbol, timeframe, candles, row, data, config, days)}


def _result(name: str, symbol: str, timeframe: str, candles: pd.DataFrame, row: dict[str, Any], data: Any,
            config: Any, days: int) -> dict[str, Any]:
    from blofin_pipeline.backtest import stats
    from blofin_pipeline.timeframes import periods_per_year

    oos_start = pd.Timestamp(row["params"][0]["test_start"]) if row["params"] else candles.index[0]
    close, oos_close = candles["close"], candles["close"][candles.index >= oos_start]
    metrics, ppy = row["metrics"], periods_per_year(timeframe)
    power = stats.power(metrics["dsr_n_trials"], metrics["oos_bars"], ppy)
    return {
        "strategy": name, "symbol": symbol, "timeframe": timeframe,
        "data": {"sources": list(data.sources), "synthetic": data.synthetic},
        "window": {"start": row["window_start"], "end": row["window_end"], "days": days, "bars": len(candles),
                   "buy_and_hold_return": float(close.iloc[-1] / close.iloc[0] - 1.0)},
        "walk_forward": {"train_days": config.wf_train_days, "folds": config.wf_folds, "anchored": config.wf_anchored},
        "out_of_sample": {"start": oos_start.isoformat(), "end": row["window_end"],
                          "bars": len(oos_close), "folds": len(row["params"]), "fee": config.fee,
                          "slippage": config.slippage, **{k: row[k] for k in BACKTEST_METRICS},
                          "buy_and_hold_return": float(oos_close.iloc[-1] / oos_close.iloc[0] - 1.0)},
        "power": {**power, **stats.track_records(row["sharpe"], power["n_trials"], ppy)},
        "folds": row["params"],
    }


def backtest_text(r: dict[str, Any], data_label: str) -> str:
    """The result as the CLI prints it."""
    w, o, p, g = r["window"], r["out_of_sample"], r["power"], r["walk_forward"]
    lines = [f"{r['strategy']} on {r['symbol']} {r['timeframe']}; {data_label}",
             f"Window (the candles the walk-forward was given): {w['start']} .. {w['end']}, "
             f"{w['days'] or 'all stored'} days, {w['bars']} bars",
             f"  {'buy and hold':<16} {w['buy_and_hold_return']:+.2%} (first to last close, before costs)",
             f"Out of sample (each fold's parameters chosen on the bars before it, judged on the next; "
             f"{g['train_days']} training days, {'anchored' if g['anchored'] else 'rolling'}): "
             f"{o['start']} .. {o['end']}, {o['bars']} bars in {o['folds']} folds; fee {o['fee']:g}, "
             f"slippage {o['slippage']:g}"]
    lines += [f"  {k:<16} {_fmt(o[k])}" for k in BACKTEST_METRICS]
    lines.append(f"  {'buy and hold':<16} {o['buy_and_hold_return']:+.2%} (same span, before costs)")
    lines.append(f"Power: N = {p['n_trials']} trials (every (item, symbol) out-of-sample series recorded, plus this "
                 f"file), T = {p['oos_bars']} bars: DSR 0.95 needs an annualised Sharpe of "
                 f"{p['required_sharpe_annual']:.2f}")
    lines.append(f"  at this Sharpe: {_days(p['min_trl_days'])} for 95% confidence it is above 0 (MinTRL), "
                 f"{_days(p['dsr_trl_days'])} for DSR 0.95 at this N")
    lines.append("Parameters per fold:")
    lines += [f"  fold {f['fold']} from {f['test_start']}: "
              + ", ".join(f"{k}={_fmt(v)}" for k, v in f["params"].items()) for f in r["folds"]]
    return "\n".join(lines)


def _days(value: float | None) -> str:
    return "never (Sharpe <= 0)" if value is None else f"{value:.0f} days"


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4f}"
