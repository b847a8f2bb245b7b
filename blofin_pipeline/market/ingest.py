"""The `ingest_candles` step: fetch from the last stored candle up to the run's data end."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.market import sample
from blofin_pipeline.market.candles import last_candle_ts, store_candles, to_ms
from blofin_pipeline.market.validation import frame_to_ms_index
from blofin_pipeline.store import Store
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)


class CandleSource(Protocol):
    name: str

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Closed candles with start <= ts and ts + bar <= end, UTC DatetimeIndex."""


class SampleSource:
    """The synthetic market (SYNTHETIC DATA, see blofin_pipeline.market.sample)."""

    name = sample.SOURCE_NAME

    def __init__(self, seed: int = 0, edge: str = "") -> None:
        self.seed = seed
        self.edge = sample.parse_edge(edge)

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return sample.generate_candles(symbol, timeframe, start, end, seed=self.seed, edge=self.edge)


class BlofinSource:
    """BloFin's public REST market data."""

    name = "blofin"

    def __init__(self, client_factory: Callable[[], object]) -> None:
        self._client_factory = client_factory

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        client = self._client_factory()
        try:
            # The exchange marks the forming candle unconfirmed; the client drops it. Bars
            # that open before `end` but close after it are cut here so a backfill of an
            # old date sees only what was closed by the end of its own day.
            end_ms = to_ms(end) - timeframe_ms(timeframe) + 1
            return client.fetch_candles(symbol, timeframe, to_ms(start), end_ms)
        finally:
            client.close()


def make_source(ctx: RunContext, client_factory: Callable[[], object] | None = None) -> CandleSource:
    cfg = ctx.config
    if cfg.data_source == "sample":
        return SampleSource(cfg.sample_seed, cfg.sample_edge)
    if client_factory is None:
        from blofin_pipeline.market.blofin_client import BlofinClient

        client_factory = BlofinClient
    return BlofinSource(client_factory)


def ingest(ctx: RunContext, store: Store, source: CandleSource) -> dict:
    """Fetch, validate and upsert candles for every configured symbol. Returns a summary."""
    cfg = ctx.config
    step = pd.Timedelta(milliseconds=timeframe_ms(cfg.timeframe))
    summary: dict = {"source": source.name, "synthetic": source.name == sample.SOURCE_NAME,
                     "data_end": ctx.data_end.isoformat(), "symbols": {}}
    if summary["synthetic"]:
        logger.info("data source: %s", sample.SYNTHETIC_LABEL)
    for symbol in cfg.symbols:
        last = last_candle_ts(store, symbol, cfg.timeframe, before=ctx.data_end)
        history_start = ctx.data_end - pd.Timedelta(days=cfg.history_days)
        start = pd.Timestamp(last, unit="ms", tz="UTC") + step if last is not None else history_start
        fetched = source.fetch(symbol, cfg.timeframe, start, ctx.data_end)
        frame = frame_to_ms_index(fetched) if len(fetched) else fetched
        if len(fetched) == 0:
            frame = pd.DataFrame(columns=["open", "high", "low", "close", "volume"], dtype="float64")
        report = store_candles(store, frame, symbol, cfg.timeframe, source=source.name,
                               run_date=ctx.run_date, previous_ts=last)
        logger.info("ingest %s", report.summary())
        summary["symbols"][symbol] = {
            "from": start.isoformat(), "rows": report.rows_out, "duplicates_dropped": report.duplicates_dropped,
            "out_of_order": report.out_of_order, "gaps": len(report.gaps), "missing_bars": report.missing_bars,
        }
    return summary
