"""`backtest STRATEGY.py --symbol SYM`: the checks, then a walk-forward backtest on stored candles."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.candles import last_candle_ts
from blofin_pipeline.market.timeframes import timeframe_ms
from blofin_pipeline.research.registry import StrategyRecord
from blofin_pipeline.research.scoring import load_window, score_one
from blofin_pipeline.store import open_store

METRICS = ("score", "sharpe", "deflated_sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar",
           "win_rate", "profit_factor", "n_trades", "exposure", "turnover")


def backtest_file(path: Path, *, symbol: str, timeframe: str, fee: float, slippage: float, db_url: str,
                  days: int, as_json: bool) -> tuple[int, str]:
    """Check the file (static, sandbox, lookahead), then score it out of sample on the last
    `days` of stored candles. Exit code 0, or 1 when the checks reject it."""
    from blofin_pipeline.strategies import check_strategy, code_hash

    code = Path(path).read_text(encoding="utf-8")
    with open_store(db_url) as store:
        last = last_candle_ts(store, symbol, timeframe)
        if last is None:
            raise DataValidationError(f"no stored {symbol} {timeframe} candles: run the DAG or import-candles first")
        end = pd.Timestamp(last, unit="ms", tz="UTC") + pd.Timedelta(milliseconds=timeframe_ms(timeframe))
        config = PipelineConfig(symbols=(symbol,), timeframe=timeframe, fee=fee, slippage=slippage,
                                history_days=max(days, 1), score_window_days=days)
        ctx = RunContext.create(logical_date=end, data_end=end, config=config, db_url=db_url, workspace=Path("."))
        candles = load_window(ctx, store)[symbol]
        report = check_strategy(code, candles, origin=str(path))
        if not report.accepted:
            out = {"accepted": False, "reasons": report.reasons} if as_json else report.to_text()
            return 1, json.dumps(out, indent=2) if as_json else out
        from blofin_pipeline.strategies import load_strategy_source

        cls = load_strategy_source(code, origin=str(path))
        record = StrategyRecord(cls.name, 0, cls.category, dict(cls.params), dict(cls.param_space), code,
                                code_hash(code), "candidate", "user", None, None)
        row = score_one(ctx, record, cls, symbol, candles, n_total_trials=1, phase="candidate")
    result = {"strategy": cls.name, "symbol": symbol, "timeframe": timeframe, "window_start": row["window_start"],
              "window_end": row["window_end"], **{k: row[k] for k in METRICS}, "folds": row["params"]}
    if as_json:
        return 0, json.dumps(result, indent=2, default=str)
    lines = [f"{cls.name} on {symbol} {timeframe}, {row['window_start']} .. {row['window_end']} "
             f"(walk-forward, out of sample; fee {fee:g}, slippage {slippage:g})"]
    lines += [f"  {k:<16} {_fmt(row[k])}" for k in METRICS]
    return 0, "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4f}"
