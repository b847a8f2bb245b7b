"""The `ingest_candles` step: fetch from the last stored candle up to the run's data end.

Per symbol: the open gaps of earlier runs are fetched again first (at most
``MAX_GAP_FETCHES`` times each: some holes are the exchange's own) and closed when their
bars arrive; then the new bars. A span the source could not page to (an exchange page
that does not move backwards) is recorded as a gap, so the next run fetches it again.
A series never mixes sources: bars of another source than the stored ones are refused.

``data_source="stored"`` fetches nothing: the run researches exactly what the data
database holds (imported CSV, earlier ingests), and ingest reports the stored span.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple, Protocol

import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market import sample
from blofin_pipeline.market.candles import (
    last_candle_ts,
    ms_to_iso,
    record_gaps,
    refuse_mixed_sources,
    store_candles,
    to_ms,
)
from blofin_pipeline.market.validation import CANDLE_COLUMNS, Gap, frame_to_ms_index
from blofin_pipeline.store import Store
from blofin_pipeline.store.candles import (
    candle_count,
    count_gap_fetch,
    open_gaps,
    series_sources,
)
from blofin_pipeline.timeframes import timeframe_ms

logger = logging.getLogger(__name__)

MAX_GAP_FETCHES = 3  # runs that fetch an open gap again before it is left open (and reported)
STORED = "stored"


class Fetched(NamedTuple):
    """Closed candles (UTC DatetimeIndex) and the span [start_ms, end_ms) the source
    could not reach (None: everything it has was fetched)."""

    candles: pd.DataFrame
    unfetched: tuple[int, int] | None = None


class CandleSource(Protocol):
    name: str

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        """Closed candles with start <= ts and ts + bar <= end."""


class SampleSource:
    """The synthetic market (SYNTHETIC DATA, see blofin_pipeline.market.sample)."""

    name = sample.SOURCE_NAME

    def __init__(self, seed: int = 0, edge: str = "") -> None:
        self.seed = seed
        self.edge = sample.parse_edge(edge)

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        return Fetched(sample.generate_candles(symbol, timeframe, start, end, seed=self.seed, edge=self.edge))


class BlofinSource:
    """BloFin's public REST market data."""

    name = "blofin"

    def __init__(self, client_factory: Callable[[], object]) -> None:
        self._client_factory = client_factory

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        client = self._client_factory()
        try:
            # The exchange marks the forming candle unconfirmed; the client drops it. Bars
            # that open before `end` but close after it are cut here so a backfill of an
            # old date sees only what was closed by the end of its own day.
            end_ms = to_ms(end) - timeframe_ms(timeframe) + 1
            frame, unfetched = client.fetch_candle_span(symbol, timeframe, to_ms(start), end_ms)
            return Fetched(frame, unfetched)
        finally:
            client.close()


class StoredSource:
    """What the data database already holds: nothing is fetched."""

    name = STORED

    def fetch(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> Fetched:
        return nothing()


def nothing() -> Fetched:
    """No candles, nothing missed."""
    return Fetched(pd.DataFrame(columns=list(CANDLE_COLUMNS), dtype="float64"))


def make_source(ctx: RunContext, client_factory: Callable[[], object] | None = None) -> CandleSource:
    cfg = ctx.config
    if cfg.data_source == "sample":
        return SampleSource(cfg.sample_seed, cfg.sample_edge)
    if cfg.data_source == STORED:
        return StoredSource()
    if client_factory is None:
        from blofin_pipeline.market.blofin_client import BlofinClient

        client_factory = BlofinClient
    return BlofinSource(client_factory)


def ingest(ctx: RunContext, store: Store, source: CandleSource) -> dict:
    """Fetch, validate and upsert candles for every configured symbol. Returns a summary."""
    summary: dict = {"source": source.name, "synthetic": source.name == sample.SOURCE_NAME,
                     "data_end": ctx.data_end.isoformat(), "symbols": {}}
    if source.name == STORED:
        summary["symbols"] = {s: stored_span(ctx, store, s) for s in ctx.config.symbols}
        summary["sources"] = sorted({src for v in summary["symbols"].values() for src in v["sources"]})
        summary["synthetic"] = sample.SOURCE_NAME in summary["sources"]
        return summary
    if summary["synthetic"]:
        logger.info("data source: %s", sample.SYNTHETIC_LABEL)
    for symbol in ctx.config.symbols:
        summary["symbols"][symbol] = ingest_symbol(ctx, store, source, symbol)
    return summary


def ingest_symbol(ctx: RunContext, store: Store, source: CandleSource, symbol: str) -> dict:
    """Refetch the symbol's open gaps, then fetch and store its new bars."""
    cfg = ctx.config
    refuse_mixed_sources(store, symbol, cfg.timeframe, source.name, how=(
        "Run with data_source='stored' to research the stored candles as they are, or keep this source's "
        "data in another data database (the blofin_db connection / --db)."))
    refetched = refetch_gaps(ctx, store, source, symbol)
    step = pd.Timedelta(milliseconds=timeframe_ms(cfg.timeframe))
    last = last_candle_ts(store, symbol, cfg.timeframe, before=ctx.data_end)
    start = (pd.Timestamp(last, unit="ms", tz="UTC") + step if last is not None
             else ctx.data_end - pd.Timedelta(days=cfg.history_days))
    fetched = source.fetch(symbol, cfg.timeframe, start, ctx.data_end) if start < ctx.data_end else nothing()
    report = store_candles(store, _ms_frame(fetched.candles), symbol, cfg.timeframe, source=source.name,
                           run_date=ctx.run_date, previous_ts=last)
    unreached = unfetched_gaps(fetched.unfetched, cfg.timeframe)
    record_gaps(store, symbol, cfg.timeframe, unreached, ctx.run_date)
    gaps = report.gaps + [g for g in unreached if all(g.start != r.start for r in report.gaps)]
    if report.rows_in == 0 and last is not None:
        logger.info("ingest %s %s: up to date to %s (the last closed bar before %s)", symbol, cfg.timeframe,
                    ms_to_iso(last), ctx.data_end.isoformat())
    else:
        logger.info("ingest %s", report.summary())
    for gap in unreached:
        logger.warning("ingest %s %s: %d bars from %s to %s could not be fetched (the exchange's pages stopped "
                       "moving back): recorded as a gap, fetched again by the next run", symbol, cfg.timeframe,
                       gap.missing_bars, ms_to_iso(gap.start), ms_to_iso(gap.end))
    return {"from": start.isoformat(), "rows": report.rows_out, "duplicates_dropped": report.duplicates_dropped,
            "out_of_order": report.out_of_order, "gaps": len(gaps), "missing_bars": sum(g.missing_bars for g in gaps),
            "up_to_date": ms_to_iso(last) if report.rows_in == 0 and last is not None else None,
            "gaps_refetched": refetched}


def refetch_gaps(ctx: RunContext, store: Store, source: CandleSource, symbol: str) -> int:
    """Fetch the bars of the symbol's open gaps (ended before the data end) again; storing
    them closes what they fill. Returns how many gaps were fetched."""
    tf = ctx.config.timeframe
    step = timeframe_ms(tf)
    end_ms = to_ms(ctx.data_end)
    due = [g for g in open_gaps(store, symbol, tf)
           if int(g["gap_end"]) + step <= end_ms and int(g["fetch_attempts"]) < MAX_GAP_FETCHES]
    for gap in due:
        first, last = int(gap["gap_start"]), int(gap["gap_end"])
        count_gap_fetch(store, symbol, tf, first)
        fetched = source.fetch(symbol, tf, pd.Timestamp(first, unit="ms", tz="UTC"),
                               pd.Timestamp(last + step, unit="ms", tz="UTC"))
        report = store_candles(store, _ms_frame(fetched.candles), symbol, tf, source=source.name,
                               run_date=gap["run_date"])
        record_gaps(store, symbol, tf, unfetched_gaps(fetched.unfetched, tf), gap["run_date"])
        logger.info("ingest %s %s: gap %s .. %s (%d bars) fetched again (attempt %d of %d): %d bars arrived",
                    symbol, tf, ms_to_iso(first), ms_to_iso(last), int(gap["missing_bars"]),
                    int(gap["fetch_attempts"]) + 1, MAX_GAP_FETCHES, report.rows_out)
    return len(due)


def unfetched_gaps(span: tuple[int, int] | None, timeframe: str) -> list[Gap]:
    """The bars opening in [start_ms, end_ms) as a gap (none when the span holds no bar)."""
    if span is None:
        return []
    step = timeframe_ms(timeframe)
    first, last = -(-span[0] // step) * step, (span[1] - 1) // step * step
    return [Gap(first, last, (last - first) // step + 1)] if last >= first else []


def stored_span(ctx: RunContext, store: Store, symbol: str) -> dict:
    """data_source='stored': what the database holds for the symbol up to the data end."""
    tf = ctx.config.timeframe
    end_ms = to_ms(ctx.data_end)
    sources = [r["source"] for r in series_sources(store, symbol, tf) if int(r["first_ts"]) < end_ms]
    last = last_candle_ts(store, symbol, tf, before=ctx.data_end)
    if last is None:
        raise DataValidationError(
            f"{symbol} {tf}: no stored candles before {ctx.data_end.isoformat()}, and data_source='stored' fetches "
            "nothing: import them first (python -m blofin_pipeline import-candles) or run with data_source "
            "'sample' or 'blofin'")
    n_bars = candle_count(store, symbol, tf, 0, end_ms - 1)
    logger.info("ingest %s %s: stored: %d bars to %s (source %s); nothing fetched", symbol, tf, n_bars,
                ms_to_iso(last), ", ".join(sources))
    return {"stored_bars": n_bars, "last": ms_to_iso(last), "sources": sources,
            "rows": 0, "gaps": 0, "missing_bars": 0}


def _ms_frame(candles: pd.DataFrame) -> pd.DataFrame:
    return frame_to_ms_index(candles) if len(candles) else nothing().candles
