"""The scoring window: the candles every step of a run evaluates on."""
from __future__ import annotations

import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.candles import load_candles
from blofin_pipeline.store import Store

MIN_SCORE_BARS = 200


def score_window(ctx: RunContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    return ctx.data_end - pd.Timedelta(days=ctx.config.score_window_days), ctx.data_end


def load_window(ctx: RunContext, store: Store) -> dict[str, pd.DataFrame]:
    """Candles of every configured symbol in the scoring window; clear error when missing."""
    start, end = score_window(ctx)
    out = {}
    for symbol in ctx.config.symbols:
        candles = load_candles(store, symbol, ctx.config.timeframe, start, end)
        if len(candles) < MIN_SCORE_BARS:
            raise DataValidationError(
                f"{symbol} {ctx.config.timeframe}: only {len(candles)} candles between {start} and {end} "
                f"(need {MIN_SCORE_BARS}); run ingest_candles for {ctx.run_date} first")
        out[symbol] = candles
    return out

