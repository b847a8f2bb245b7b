from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.market.sample import Edge, generate_candles, parse_edge

UTC = "UTC"
START, END = pd.Timestamp("2025-01-01", tz=UTC), pd.Timestamp("2025-07-01", tz=UTC)


def returns(symbol: str, **kw) -> pd.Series:
    c = generate_candles(symbol, "1H", START, END, **kw)
    return np.log(c["close"]).diff().dropna()


def test_deterministic_and_independent_of_the_requested_range():
    a = generate_candles("BTC-USDT", "1H", START, END)
    b = generate_candles("BTC-USDT", "1H", START - pd.Timedelta(days=300), END + pd.Timedelta(days=200))
    pd.testing.assert_frame_equal(a, b.loc[a.index])
    assert len(a) == (END - START) / pd.Timedelta(hours=1)
    assert a.index[0] == START and a.index[-1] == END - pd.Timedelta(hours=1)


def test_only_closed_candles_before_end():
    end = pd.Timestamp("2025-01-01 10:30", tz=UTC)
    c = generate_candles("BTC-USDT", "1H", START, end)
    assert c.index[-1] == pd.Timestamp("2025-01-01 09:00", tz=UTC)  # the 10:00 bar is still forming


def test_ohlc_consistent_and_positive():
    c = generate_candles("SOL-USDT", "15m", START, START + pd.Timedelta(days=30))
    assert (c["low"] <= c[["open", "close"]].min(axis=1)).all()
    assert (c["high"] >= c[["open", "close"]].max(axis=1)).all()
    assert (c[["open", "high", "low", "close", "volume"]] > 0).all().all()


def test_stylised_facts_of_crypto_returns():
    btc, eth = returns("BTC-USDT"), returns("ETH-USDT")
    assert btc.kurt() > 1.0                       # fat tails
    assert btc.abs().autocorr(1) > 0.05           # volatility clustering
    assert 0.15 < btc.corr(eth) < 0.9             # correlated symbols
    assert abs(btc.autocorr(1)) < 0.05            # no edge by default


@pytest.mark.parametrize("kind, sign", [("momentum", 1), ("mean_reversion", -1)])
def test_planted_edge_has_the_asked_strength(kind, sign):
    r = returns("BTC-USDT", edge=Edge(kind, 0.12))
    assert sign * r.autocorr(1) == pytest.approx(0.12, abs=0.04)


def test_seed_changes_the_market():
    assert not returns("BTC-USDT", seed=1).equals(returns("BTC-USDT", seed=0))


def test_parse_edge():
    assert parse_edge("") is None and parse_edge("none") is None
    assert parse_edge("momentum:0.1") == Edge("momentum", 0.1)
    for bad in ("momentum", "trend:0.1", "momentum:x", "momentum:1.5"):
        with pytest.raises(ConfigError):
            parse_edge(bad)
