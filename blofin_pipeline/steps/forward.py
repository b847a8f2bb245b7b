"""The forward record and the day's signals, both run by `rank_and_update`.

First :func:`record_forward`: the bars that arrived since the previous run, with the positions
every version kept by the latest ranking before the date decided on them and the returns
after costs (`backtest.forward`); the ranking blends the record in. Last
:func:`record_signals`: the position every version the day's ranking kept decides at the close
of the last bar, for the next one.

A version trades on each symbol it was backtested on at promotion, with the parameters the
walk-forward chose on that symbol's last fold; its candles start at the scoring window of
its promotion date (`backtest.forward.anchor_of`), so a bar's position is the same whichever
date computes it, and a day's signal is the first position of the next day's record.
"""
from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.backtest.forward import (
    SignalFn,
    anchor_of,
    bars_to_rows,
    forward_day,
    forward_span,
    next_run_date,
)
from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import PipelineError, StrategyError
from blofin_pipeline.market.candles import load_candles, to_ms
from blofin_pipeline.market.sample import SOURCE_NAME as SAMPLE_SOURCE
from blofin_pipeline.store import Store, utc_now
from blofin_pipeline.store import forward as forward_store
from blofin_pipeline.store import signals as signals_store
from blofin_pipeline.store.candles import candle_sources
from blofin_pipeline.strategies import registry
from blofin_pipeline.strategies.positions import last_fold_params, positions_for
from blofin_pipeline.strategies.registry import StrategyRecord
from blofin_pipeline.strategies.status import statuses_at
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployed:
    """A version as it trades: its code, promotion date and, per symbol, (params, expected Sharpe)."""

    record: StrategyRecord
    promoted_on: str
    symbols: dict[str, tuple[dict[str, Any], float | None]]


def deployed(ctx: RunContext, store: Store, name: str, version: int, promoted_on: str) -> Deployed:
    record = registry.get_strategy(store, name, version)
    backtest = {r["symbol"]: r for r in forward_store.backtest_at(store, promoted_on, name, version)}
    symbols = {s: (last_fold_params(backtest[s]["params"]), backtest[s]["sharpe"])
               for s in ctx.config.symbols if s in backtest}
    return Deployed(record, promoted_on, symbols)


class CandleCache:
    """Candles of every configured symbol from an anchor to the run's data end, loaded once."""

    def __init__(self, ctx: RunContext, store: Store) -> None:
        self.ctx, self.store = ctx, store
        self._frames: dict[pd.Timestamp, dict[str, pd.DataFrame]] = {}

    def since(self, anchor: pd.Timestamp) -> dict[str, pd.DataFrame]:
        if anchor not in self._frames:
            cfg = self.ctx.config
            self._frames[anchor] = {s: load_candles(self.store, s, cfg.timeframe, anchor, self.ctx.data_end)
                                    for s in cfg.symbols}
        return self._frames[anchor]


def _literal(code: str, name: str) -> Any:
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise StrategyError(f"ML strategy code defines no {name}")


def _ml_artefact(code: str, symbol: str) -> str:
    """The artefact of an ML strategy for a symbol: ARTEFACTS[symbol] (one per symbol), or
    the ARTEFACT of a version written before, which traded one symbol only."""
    if "ARTEFACTS" in code:
        artefacts = _literal(code, "ARTEFACTS")
        if symbol not in artefacts:
            raise StrategyError(f"ML strategy has no artefact for {symbol!r}")
        return artefacts[symbol]
    return _literal(code, "ARTEFACT")


def signal_of(version: Deployed, symbol: str, frames: Mapping[str, pd.DataFrame]) -> SignalFn:
    """fn(candles) -> positions of a deployed version on one symbol."""
    if version.record.origin == "ml":   # an ensemble-as-strategy: its code names its artefacts
        from blofin_pipeline.ml.inference import bar_by_bar_signal

        return bar_by_bar_signal(_ml_artefact(version.record.code, symbol), frames, symbol)
    params = version.symbols[symbol][0]
    return lambda candles: positions_for(version.record, candles, params)


def _synthetic(ctx: RunContext, store: Store, start: pd.Timestamp) -> bool:
    return SAMPLE_SOURCE in candle_sources(store, ctx.config.timeframe, to_ms(start), to_ms(ctx.data_end))


def _forward_rows(ctx: RunContext, version: Deployed, candles: CandleCache, synthetic: bool) -> list[dict]:
    span_start, _ = forward_span(ctx.data_end)
    frames = candles.since(anchor_of(ctx.data_end, ctx.run_date, version.promoted_on, ctx.config.score_window_days))
    entry = ctx.run_date == next_run_date(version.promoted_on)
    rows = []
    for symbol, (params, expected) in version.symbols.items():
        bars = forward_day(signal_of(version, symbol, frames), frames[symbol], span_start, ctx.config.costs,
                           entry=entry)
        if bars is None:
            continue
        rows.append({
            "run_date": ctx.run_date, "strategy": version.record.name, "version": version.record.version,
            "symbol": symbol, "timeframe": ctx.config.timeframe, "promoted_on": version.promoted_on,
            "code_hash": version.record.code_hash, "params": params, "first_bar": bars.index[0].isoformat(),
            "last_bar": bars.index[-1].isoformat(), "n_bars": len(bars),
            "day_return": float(np.prod(1.0 + bars["return"].to_numpy()) - 1.0), "expected_sharpe": expected,
            "bars": bars_to_rows(bars), "synthetic": int(synthetic), "created_at": utc_now(),
        })
    return rows


def record_forward(ctx: RunContext, store: Store) -> dict[str, Any]:
    """Write the date's forward record: the versions the latest ranking before it kept, on the
    bars since the previous run. Returns a summary (versions tracked, rows, failures).

    A version archived since, by anything but a ranking (superseded, a failed scoring, by
    hand), is no longer active when the date starts (the status history) and stops accruing."""
    active = {r.ref for r in statuses_at(store, ctx.run_date) if r.status == "active"}
    tracked = [t for t in forward_store.tracked_on(store, ctx.run_date)
               if f"{t['name']}@{t['version']}" in active]
    candles = CandleCache(ctx, store)
    synthetic = _synthetic(ctx, store, forward_span(ctx.data_end)[0])
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for t in tracked:
        ref = f"{t['name']}@{t['version']}"
        try:
            rows += _forward_rows(ctx, deployed(ctx, store, t["name"], int(t["version"]), t["promoted_on"]),
                                  candles, synthetic)
        except PipelineError as err:  # one broken version must not cost the others their record
            failed[ref] = str(err)
            logger.error("forward record of %s on %s failed: %s", ref, ctx.run_date, err)
    written = forward_store.replace_forward_rows(store, ctx.run_date, rows)
    logger.info("forward record of %s: %d versions tracked, %d rows%s", ctx.run_date, len(tracked), written,
                " [SYNTHETIC data]" if synthetic else "")
    return {"tracked": len(tracked), "rows": written, "failed": failed, "synthetic": synthetic}


def record_signals(ctx: RunContext, store: Store) -> dict[str, Any]:
    """Write the date's signals: the position each version the day's ranking kept decides at
    the close of the last bar, per symbol. Returns a summary."""
    candles = CandleCache(ctx, store)
    bar = pd.Timedelta(milliseconds=timeframe_ms(ctx.config.timeframe))
    synthetic = _synthetic(ctx, store, forward_span(ctx.data_end)[0])
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for k in forward_store.kept_on(store, ctx.run_date):
        ref = f"{k['name']}@{k['version']}"
        try:
            version = deployed(ctx, store, k["name"], int(k["version"]), k["promoted_on"])
            frames = candles.since(anchor_of(ctx.data_end, ctx.run_date, k["promoted_on"],
                                             ctx.config.score_window_days))
            mine = []
            for symbol in version.symbols:
                frame = frames[symbol]
                if frame.empty:
                    continue
                mine.append({
                    "run_date": ctx.run_date, "strategy": k["name"], "version": int(k["version"]), "symbol": symbol,
                    "timeframe": ctx.config.timeframe, "rank": int(k["rank"]),
                    "for_bar": (frame.index[-1] + bar).isoformat(),
                    "position": float(signal_of(version, symbol, frames)(frame).iloc[-1]) + 0.0,  # no -0.0
                    "promoted_on": k["promoted_on"], "code_hash": version.record.code_hash,
                    "synthetic": int(synthetic), "created_at": utc_now(),
                })
            rows += mine
        except PipelineError as err:
            failed[ref] = str(err)
            logger.error("signal of %s on %s failed: %s", ref, ctx.run_date, err)
    written = signals_store.replace_signals(store, ctx.run_date, rows)
    return {"rows": written, "failed": failed, "synthetic": synthetic}
