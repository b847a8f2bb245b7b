"""The scoring window: the candles every step of a run evaluates on, and what they are.

What the data is (synthetic or not) is read from the window's candles' own ``source``
column, never from the run's ``data_source`` parameter: ``stored`` can hold anything,
and a label must not claim more than the rows say.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from blofin_pipeline.config import MIN_SCORE_BARS, RunContext
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market import csv_import, sample
from blofin_pipeline.market.candles import load_candles, to_ms
from blofin_pipeline.market.ingest import BlofinSource
from blofin_pipeline.store import Store
from blofin_pipeline.store.candles import candle_count, window_sources

SOURCE_DESCRIPTIONS = {
    sample.SOURCE_NAME: sample.SYNTHETIC_LABEL,
    BlofinSource.name: "BloFin exchange candles",
    csv_import.SOURCE: "candles imported from CSV",
}


@dataclass(frozen=True)
class DataLabel:
    """The sources of the scoring window's candles (sorted)."""

    sources: tuple[str, ...]

    @property
    def synthetic(self) -> bool:
        return sample.SOURCE_NAME in self.sources

    @property
    def description(self) -> str:
        """e.g. "candles imported from CSV (source 'csv')"; sources joined by '; '."""
        return "; ".join(f"{SOURCE_DESCRIPTIONS.get(s, 'candles')} (source {s!r})" for s in self.sources) \
            or "candles of unrecorded source"


EVERY_CANDLE_START = pd.Timestamp(0, tz="UTC")  # the window's start with score_window_days = 0


def score_window(ctx: RunContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The scored span: the ``score_window_days`` before the run's data end, or with 0
    every stored candle before it (a longer window than the stored history holds it all)."""
    days = ctx.config.score_window_days
    return (ctx.data_end - pd.Timedelta(days=days) if days else EVERY_CANDLE_START), ctx.data_end


def load_window(ctx: RunContext, store: Store, symbols: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Candles of every configured symbol (or of ``symbols``) in the scoring window; a clear
    error when they are missing or too few for the walk-forward's initial training span and folds."""
    start, end = score_window(ctx)
    cfg = ctx.config
    need = max(MIN_SCORE_BARS, cfg.wf_train_bars + 2 * cfg.wf_folds)
    out = {}
    for symbol in cfg.symbols if symbols is None else symbols:
        candles = load_candles(store, symbol, cfg.timeframe, start, end)
        if len(candles) < need:
            raise DataValidationError(
                f"{symbol} {cfg.timeframe}: only {len(candles)} candles between {start} and {end}; scoring needs "
                f"{need} ({MIN_SCORE_BARS} at least, and wf_train_days={cfg.wf_train_days} of training plus "
                f"wf_folds={cfg.wf_folds} test folds); run ingest_candles for {ctx.run_date} first, or shorten "
                "wf_train_days")
        out[symbol] = candles
    return out


def window_bars(ctx: RunContext, store: Store) -> dict[str, int]:
    """Stored bars of each configured symbol in the scoring window (counted, not loaded)."""
    start, end = score_window(ctx)
    return {s: candle_count(store, s, ctx.config.timeframe, to_ms(start), to_ms(end) - 1) for s in ctx.config.symbols}


def window_label(ctx: RunContext, store: Store) -> DataLabel:
    """What the run's scoring window holds, by the candles' own source column."""
    start, end = (to_ms(t) for t in score_window(ctx))
    found = {s for symbol in ctx.config.symbols
             for s in window_sources(store, symbol, ctx.config.timeframe, start, end)}
    return DataLabel(tuple(sorted(found)))
