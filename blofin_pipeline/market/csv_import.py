"""`import-candles`: load candles from CSV through the same validation as the exchange."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.candles import store_candles, stored_ts
from blofin_pipeline.market.validation import ValidationReport
from blofin_pipeline.store import Store
from blofin_pipeline.timeframes import timeframe_ms

CSV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
MIN_EPOCH_MS = 10**11  # below this a number is seconds, not milliseconds (1973 in ms)


def read_candles_csv(path: Path) -> pd.DataFrame:
    """CSV with columns ts,open,high,low,close,volume -> frame indexed by epoch ms."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataValidationError(f"{path}: not a readable CSV: {err}") from err
    raw.columns = [c.strip().lower() for c in raw.columns]
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(f"{path}: missing columns {missing}; expected {','.join(CSV_COLUMNS)}")
    ts_text = raw["ts"].str.strip()
    if ts_text.str.fullmatch(r"\d+").all():
        ts = ts_text.astype("int64").to_numpy()
        if len(ts) and ts.min() < MIN_EPOCH_MS:
            raise DataValidationError(f"{path}: ts {ts.min()} looks like seconds; ts must be epoch milliseconds")
    else:
        parsed = pd.to_datetime(ts_text, utc=True, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            line = int(np.flatnonzero(parsed.isna().to_numpy())[0]) + 2
            raise DataValidationError(f"{path}: line {line}: ts {ts_text.iloc[line - 2]!r} is neither epoch ms nor ISO 8601")
        ts = parsed.dt.as_unit("ms").astype("int64").to_numpy()
    values = {}
    for col in CSV_COLUMNS[1:]:
        num = pd.to_numeric(raw[col].str.strip(), errors="coerce")
        bad = num.isna() & (raw[col].str.strip().str.lower() != "nan")
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise DataValidationError(f"{path}: line {line}: {col} {raw[col].iloc[line - 2]!r} is not a number")
        values[col] = num.to_numpy(dtype="float64")
    return pd.DataFrame(values, index=pd.Index(ts, name="ts"))


def import_csv(store: Store, path: Path, symbol: str, timeframe: str) -> ValidationReport:
    """Validate and upsert a CSV of candles; nothing is stored if any row is invalid."""
    timeframe_ms(timeframe)
    frame = read_candles_csv(path)
    known = stored_ts(store, symbol, timeframe, int(frame.index.min()), int(frame.index.max()) + 1) if len(frame) else None
    return store_candles(store, frame, symbol, timeframe, source="csv",
                         run_date=pd.Timestamp.now("UTC").strftime("%Y-%m-%d"), known_ts=known)
