from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import ModelError
from blofin_pipeline.ml.features import WARMUP_BARS, build_features

SYMBOL = "BTC-USDT"


def _sample_points(index: pd.DatetimeIndex, n: int = 40) -> list[pd.Timestamp]:
    """Early bars (inside the warm-up), a spread over the whole range, and the last bar."""
    rng = np.random.default_rng(7)
    positions = {0, 1, 5, WARMUP_BARS - 1, WARMUP_BARS, WARMUP_BARS + 1, len(index) - 1}
    positions |= set(rng.integers(0, len(index), n).tolist())
    return [index[p] for p in sorted(positions)]


def _truncation_mismatches(build, candles_by_symbol, symbol) -> list[str]:
    """Bars whose features differ when every symbol's data are cut at that bar."""
    full = build(candles_by_symbol, symbol)
    bad = []
    for ts in _sample_points(candles_by_symbol[symbol].index):
        cut = {s: c.loc[:ts] for s, c in candles_by_symbol.items()}
        row = build(cut, symbol).iloc[-1]
        assert row.name == ts
        expected = full.loc[ts]
        same = np.isclose(row.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)
        bad += [f"{ts} {col}" for col in full.columns[~same]]
    return bad


def test_features_use_no_future_bars(small_market):
    assert _truncation_mismatches(build_features, small_market, SYMBOL) == []


def test_truncation_check_catches_a_leaky_feature(small_market):
    def leaky(candles_by_symbol, symbol):
        features = build_features(candles_by_symbol, symbol)
        features["next_close"] = candles_by_symbol[symbol]["close"].shift(-1)
        return features

    mismatches = _truncation_mismatches(leaky, small_market, SYMBOL)
    assert mismatches and all(m.endswith("next_close") for m in mismatches)


def test_feature_set_is_rich_and_finite_after_warmup(small_market):
    features = build_features(small_market, SYMBOL)
    assert features.shape[1] >= 20
    assert features.index.equals(small_market[SYMBOL].index)
    for needed in ("ret_lag1", "rvol_24", "rsi_14", "macd_hist", "bb_pctb_20", "atr_14",
                   "volume_z_24", "hour_sin", "dow_cos", "mkt_ret", "excess_ret"):
        assert needed in features.columns
    after = features.iloc[WARMUP_BARS:]
    assert np.isfinite(after.to_numpy()).all()
    assert features.iloc[: WARMUP_BARS - 2].isna().any(axis=1).all()


def test_rsi_and_bollinger_stay_in_their_ranges(small_market):
    features = build_features(small_market, SYMBOL).dropna()
    assert features["rsi_14"].between(-1, 1).all()
    # %B leaves [0, 1] only when the close breaks a band, which is rare at 2 sigma.
    assert 0.8 < features["bb_pctb_20"].between(0, 1).mean() < 1.0


def test_cross_features_follow_the_market(small_market):
    features = build_features(small_market, SYMBOL)
    # The market return is the mean of all three symbols' returns.
    rets = [np.log(small_market[s]["close"]).diff() for s in sorted(small_market)]
    expected = sum(rets) / 3
    np.testing.assert_allclose(features["mkt_ret"].iloc[1:], expected.iloc[1:], rtol=1e-9)
    own = np.log(small_market[SYMBOL]["close"]).diff()
    np.testing.assert_allclose(features["excess_ret"].iloc[1:], (own - expected).iloc[1:], rtol=1e-9, atol=1e-15)
    assert not any(c.startswith("xret_") for c in features.columns)  # no column per other symbol


def test_cross_features_forward_fill_a_missing_bar(small_market):
    gappy = dict(small_market)
    gappy["ETH-USDT"] = small_market["ETH-USDT"].drop(small_market["ETH-USDT"].index[100])
    features = build_features(gappy, SYMBOL)
    # ETH has no bar 100: its last close carries over (zero return), then catches up.
    log = {s: np.log(small_market[s]["close"]) for s in small_market}
    at = {i: sum(log[s].iloc[i] - log[s].iloc[i - 1] for s in log if s != "ETH-USDT") for i in (100, 101)}
    assert features["mkt_ret"].iloc[100] == pytest.approx(at[100] / 3)
    eth = log["ETH-USDT"]
    assert features["mkt_ret"].iloc[101] == pytest.approx((at[101] + eth.iloc[101] - eth.iloc[99]) / 3)


def test_market_panel_refuses_foreign_bars(small_market):
    from blofin_pipeline.exceptions import ModelError
    from blofin_pipeline.ml.features import market_panel, symbol_features

    panel = market_panel({s: f.iloc[:500] for s, f in small_market.items()})
    with pytest.raises(ModelError, match="market panel lacks"):
        symbol_features(small_market[SYMBOL], SYMBOL, panel)


def test_single_symbol_has_no_cross_features(small_market):
    features = build_features({SYMBOL: small_market[SYMBOL]}, SYMBOL)
    assert not any(c.startswith(("xret_", "mkt_")) for c in features.columns)
    assert features.shape[1] >= 20


def test_unknown_symbol_and_bad_candles_are_named(small_market):
    with pytest.raises(ModelError, match="DOGE-USDT"):
        build_features(small_market, "DOGE-USDT")
    with pytest.raises(ModelError, match="BTC-USDT.*volume"):
        build_features({SYMBOL: small_market[SYMBOL].drop(columns="volume")}, SYMBOL)
    with pytest.raises(ModelError, match="sorted"):
        build_features({SYMBOL: small_market[SYMBOL].iloc[::-1]}, SYMBOL)
