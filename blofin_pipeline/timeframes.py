"""Bar sizes in BloFin's spelling, their length, and periods per year (365-day crypto year)."""
from __future__ import annotations

from blofin_pipeline.exceptions import ConfigError

MS_PER_MINUTE = 60_000
DAYS_PER_YEAR = 365

# BloFin `bar` values (API-NOTES.md) -> minutes. 1M (month) is left out: not fixed-length.
TIMEFRAME_MINUTES: dict[str, int] = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30,
    "1H": 60, "2H": 120, "4H": 240, "6H": 360, "8H": 480, "12H": 720,
    "1D": 1440, "3D": 4320, "1W": 10080,
}


def timeframe_minutes(timeframe: str) -> int:
    """Length of one bar in minutes; ConfigError for an unknown bar size."""
    try:
        return TIMEFRAME_MINUTES[timeframe]
    except KeyError:
        raise ConfigError(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAME_MINUTES)}"
        ) from None


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar in milliseconds."""
    return timeframe_minutes(timeframe) * MS_PER_MINUTE


def periods_per_year(timeframe: str) -> float:
    """Bars in a 365-day year for this bar size (crypto trades every day)."""
    return DAYS_PER_YEAR * 1440 / timeframe_minutes(timeframe)
