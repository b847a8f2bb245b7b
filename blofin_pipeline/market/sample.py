"""The embedded default data source: a deterministic synthetic crypto market.

SYNTHETIC DATA. Nothing here comes from an exchange. It exists so the whole research
loop runs offline, and so tests can plant an edge of known strength and check that the
loop finds it (and finds nothing when there is none).

What makes it look like crypto data:
- volatility clustering: log-volatility follows a slow AR(1) process;
- fat tails: Student-t innovations (4 degrees of freedom), scaled to unit variance;
- trending and ranging regimes: a slow latent process sets a drift when it is far from
  zero (trend); near zero there is no drift and volatility is lower (range). Without
  a planted edge the log price is close to a martingale: the drift is small next to
  the noise, so no strategy should find a significant edge (the tests check that);
- correlated symbols: every symbol loads on a common market factor;
- volume: log-normal, higher on large moves and in busy hours of the day.

Determinism: bar i of a symbol is the same whatever range is asked for. Random draws
come in fixed blocks seeded by (seed, symbol, timeframe, block), and recursions carry
their state across blocks, so a backfill of an old date sees the same candles a live
run saw.

A planted edge makes returns autocorrelated at lag 1: ``momentum`` adds ``strength``
times the previous bar's return, ``mean_reversion`` subtracts it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.timeframes import timeframe_minutes, timeframe_ms

SOURCE_NAME = "sample"
SYNTHETIC_LABEL = "SYNTHETIC sample market (deterministic, not exchange data)"
SAMPLE_EPOCH = pd.Timestamp("2024-01-01", tz="UTC")
BLOCK_BARS = 4096
T_DOF = 4.0
MARKET_BETA = 0.7  # correlation of every symbol with the common factor
START_PRICES = {"BTC-USDT": 42_000.0, "ETH-USDT": 2_300.0, "SOL-USDT": 100.0, "XRP-USDT": 0.6}
DAILY_VOL = {"BTC-USDT": 0.030, "ETH-USDT": 0.038, "SOL-USDT": 0.050}
DEFAULT_DAILY_VOL = 0.045
EDGE_KINDS = ("momentum", "mean_reversion")


@dataclass(frozen=True)
class Edge:
    """A planted lag-1 return autocorrelation of the given strength (0 < strength < 1)."""

    kind: str
    strength: float

    def __post_init__(self) -> None:
        if self.kind not in EDGE_KINDS:
            raise ConfigError(f"unknown edge kind {self.kind!r}; expected one of {EDGE_KINDS}")
        if not 0.0 < self.strength < 1.0:
            raise ConfigError(f"edge strength must be in (0, 1), got {self.strength!r}")

    @property
    def ar_coefficient(self) -> float:
        return self.strength if self.kind == "momentum" else -self.strength


def parse_edge(spec: str | None) -> Edge | None:
    """Parse ``"momentum:0.1"`` / ``"mean_reversion:0.15"``; ``None``/``""``/``"none"`` means no edge."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    kind, sep, strength = spec.partition(":")
    if not sep:
        raise ConfigError(f"edge {spec!r} must look like 'momentum:0.1'")
    try:
        value = float(strength)
    except ValueError:
        raise ConfigError(f"edge {spec!r}: strength {strength!r} is not a number") from None
    return Edge(kind.strip(), value)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _student_t(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_t(T_DOF, n) / np.sqrt(T_DOF / (T_DOF - 2.0))


def _draws(seed: int, key: str, timeframe: str, n_bars: int, n_series: int) -> np.ndarray:
    """(n_series, n_bars) unit-variance fat-tailed draws, block-stable in n_bars."""
    n_blocks = -(-n_bars // BLOCK_BARS)
    out = np.empty((n_series, n_blocks * BLOCK_BARS))
    for b in range(n_blocks):
        rng = _rng(seed, key, timeframe, b)
        for s in range(n_series):
            out[s, b * BLOCK_BARS:(b + 1) * BLOCK_BARS] = _student_t(rng, BLOCK_BARS)
    return out[:, :n_bars]


def _ar1(x: np.ndarray, phi: float) -> np.ndarray:
    """y[t] = phi * y[t-1] + x[t], y[-1] = 0 (causal, so stable under extension)."""
    from scipy.signal import lfilter  # imported here: scipy.signal costs ~0.9 s in every task that imports this

    return lfilter([1.0], [1.0, -phi], x)


@lru_cache(maxsize=32)
def _path(symbol: str, timeframe: str, n_bars: int, seed: int, edge: Edge | None) -> pd.DataFrame:
    minutes = timeframe_minutes(timeframe)
    bars_per_day = 1440 / minutes
    sigma = DAILY_VOL.get(symbol, DEFAULT_DAILY_VOL) / np.sqrt(bars_per_day)

    market = _draws(seed, "MARKET", timeframe, n_bars, 1)[0]
    own = _draws(seed, symbol, timeframe, n_bars, 7)
    eps = MARKET_BETA * market + np.sqrt(1.0 - MARKET_BETA**2) * own[0]

    # Volatility clustering: log-vol is a slow AR(1) with a half-life of about two days.
    vol_phi = 0.5 ** (1.0 / (2.0 * bars_per_day))
    log_vol = _ar1(own[1] * np.sqrt(1.0 - vol_phi**2) * 0.5, vol_phi)
    vol = sigma * np.exp(log_vol - 0.125)

    # Regimes: a very slow latent process; far from zero -> trend with drift, near -> range.
    reg_phi = 0.5 ** (1.0 / (10.0 * bars_per_day))
    regime = _ar1(own[2] * np.sqrt(1.0 - reg_phi**2), reg_phi)
    trending = np.abs(regime) > 0.8
    drift = np.where(trending, np.sign(regime) * 0.01 * sigma, 0.0)
    vol = vol * np.where(trending, 1.0, 0.8)

    returns = drift + vol * eps
    if edge is not None:
        returns = _ar1(returns, edge.ar_coefficient) * np.sqrt(1.0 - edge.ar_coefficient**2)
    log_close = np.log(START_PRICES.get(symbol, 10.0)) + np.cumsum(returns)
    close = np.exp(log_close)
    open_ = np.concatenate(([close[0] / np.exp(returns[0])], close[:-1]))

    # Intrabar range: wicks scale with the bar's volatility, never inside open/close.
    wicks = np.abs(own[5:7]) * vol * 0.6
    high = np.maximum(open_, close) * np.exp(wicks[0])
    low = np.minimum(open_, close) / np.exp(wicks[1])

    ts = SAMPLE_EPOCH + pd.to_timedelta(np.arange(n_bars) * minutes, unit="min")
    hour = ts.hour.to_numpy()
    busy = 1.0 + 0.5 * np.exp(-(((hour - 14) % 24) ** 2) / 18.0)
    surprise = np.abs(returns) / vol
    base_volume = 50_000_000.0 / START_PRICES.get(symbol, 10.0) / bars_per_day
    volume = base_volume * busy * np.exp(0.4 * own[4] + 0.5 * surprise - 0.5)

    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=pd.DatetimeIndex(ts, name="ts"),
    )
    frame.flags.allows_duplicate_labels = False
    return frame


def generate_candles(
    symbol: str,
    timeframe: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    seed: int = 0,
    edge: Edge | None = None,
) -> pd.DataFrame:
    """Closed synthetic candles with ``start <= ts`` and ``ts + bar <= end`` (UTC).

    A candle is closed once its whole bar lies before ``end``, as on the exchange.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("sample market: start and end must be timezone-aware (UTC)")
    step_ms = timeframe_ms(timeframe)
    start_ms = (start - SAMPLE_EPOCH) // pd.Timedelta(1, "ms")
    end_ms = (end - SAMPLE_EPOCH) // pd.Timedelta(1, "ms")
    n_bars = end_ms // step_ms  # bars [0, n_bars) are closed by `end`
    first = max(0, -(-start_ms // step_ms))
    if n_bars <= first:
        return _path(symbol, timeframe, BLOCK_BARS, seed, edge).iloc[:0].copy()
    # Round the cache key up to whole blocks so consecutive days share one generated path.
    padded = -(-n_bars // BLOCK_BARS) * BLOCK_BARS
    path = _path(symbol, timeframe, padded, seed, edge)
    return path.iloc[first:n_bars].copy()
