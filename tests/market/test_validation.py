from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.market.validation import validate_candles

H = 3_600_000
T0 = 1_700_000_000_000 - (1_700_000_000_000 % H)


def frame(rows: list[tuple]) -> pd.DataFrame:
    """rows of (bar index, open, high, low, close, volume)."""
    return pd.DataFrame([r[1:] for r in rows], columns=["open", "high", "low", "close", "volume"],
                        index=pd.Index([T0 + r[0] * H for r in rows], name="ts"), dtype="float64")


GOOD = [(0, 10, 11, 9, 10.5, 1), (1, 10.5, 12, 10, 11, 2), (2, 11, 11.5, 10.8, 11.2, 3)]


def test_clean_batch_passes_unchanged():
    out, report = validate_candles(frame(GOOD), "BTC-USDT", "1H")
    assert report.rows_out == 3 and report.gaps == [] and report.duplicates_dropped == 0
    assert list(out.index) == [T0, T0 + H, T0 + 2 * H]


def test_exact_duplicates_dropped_and_out_of_order_sorted():
    rows = [GOOD[2], GOOD[0], GOOD[1], GOOD[0]]
    out, report = validate_candles(frame(rows), "BTC-USDT", "1H")
    assert list(out.index) == [T0, T0 + H, T0 + 2 * H]
    assert report.duplicates_dropped == 1
    assert report.out_of_order == 2  # two steps backwards: 2->0 and 1->0


def test_conflicting_duplicate_is_refused():
    rows = GOOD + [(1, 10.5, 12, 10, 11.7, 2)]
    with pytest.raises(DataValidationError, match="conflicting duplicate"):
        validate_candles(frame(rows), "BTC-USDT", "1H")


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ((3, 11, 11.5, 11.2, 11.1, 1), "OHLC inconsistent"),   # low above close
        ((3, 11, 10.9, 10.5, 11.0, 1), "OHLC inconsistent"),   # high below open
        ((3, 0, 1, 0, 1, 1), "non-positive"),
        ((3, -1, 1, -2, 1, 1), "non-positive"),
        ((3, np.nan, 1, 1, 1, 1), "NaN"),
        ((3, 1, np.inf, 1, 1, 1), "NaN or infinite"),
        ((3, 1, 1, 1, 1, -5), "negative volume"),
    ],
)
def test_invalid_rows_refuse_the_batch_naming_symbol_and_bar(bad_row, message):
    with pytest.raises(DataValidationError, match=message) as info:
        validate_candles(frame(GOOD + [bad_row]), "ETH-USDT", "1H")
    text = str(info.value)
    assert "ETH-USDT 1H" in text
    assert pd.Timestamp(T0 + 3 * H, unit="ms", tz="UTC").isoformat() in text


def test_off_grid_timestamp_refused():
    f = frame(GOOD)
    f.index = pd.Index([T0, T0 + H + 1000, T0 + 2 * H], name="ts")
    with pytest.raises(DataValidationError, match="bar grid"):
        validate_candles(f, "BTC-USDT", "1H")


def test_gaps_are_reported_not_filled():
    rows = [GOOD[0], (3, 11, 11.5, 10.8, 11.2, 3), (4, 11, 11.5, 10.8, 11.2, 3)]
    out, report = validate_candles(frame(rows), "BTC-USDT", "1H", previous_ts=T0 - 3 * H)
    assert len(out) == 3  # nothing invented
    assert [(g.start, g.end, g.missing_bars) for g in report.gaps] == [
        (T0 - 2 * H, T0 - H, 2),   # between the stored candle and this batch
        (T0 + H, T0 + 2 * H, 2),
    ]
    assert report.missing_bars == 4
