"""The indicators and signal rules compute on numpy arrays; their values must be those of
the same formulas written in pandas operators (the readable form, kept here as the
reference), bit for bit: NaN where pandas gives NaN, the sign of a zero, the Series name.
Checked on the sample market, on flat prices with bars without volume, and (indicators)
on series with missing values, across parameters from the designer's ranges."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.market.sample import generate_candles
from blofin_pipeline.strategies import indicators as ind
from blofin_pipeline.strategies import signals as sig

END = pd.Timestamp("2026-04-10", tz="UTC")


def _frames() -> dict[str, pd.DataFrame]:
    market = generate_candles("BTC-USDT", "1H", END - pd.Timedelta(days=120), END)
    odd = market.iloc[-1500:].copy()
    odd.iloc[100:160, :4] = 100.0           # flat: no move, zero deviation, zero path
    odd.iloc[300:340, 4] = 0.0              # bars without volume
    gappy = market.iloc[-900:].copy()
    gappy.iloc[[5, 50, 51, 300], 3] = np.nan
    gappy.iloc[[7, 60, 400], 4] = np.nan
    gappy.iloc[[9, 90], 1] = np.nan
    gappy.iloc[200, 3] = 0.0                # a zero close: log -> -inf, division by zero
    gappy.iloc[500:520, 4] = -3.0
    return {"market": market, "flat and no volume": odd, "short": market.iloc[:40].copy(), "gappy": gappy}


FRAMES = _frames()


def assert_same(got: pd.Series, want: pd.Series) -> None:
    assert got.name == want.name and got.index.equals(want.index) and got.dtype == want.dtype
    a, b = got.to_numpy(), want.to_numpy()
    if a.dtype.kind == "f":
        assert np.array_equal(a, b, equal_nan=True), np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))[:5]
        assert np.array_equal(np.signbit(a), np.signbit(b))
    else:
        assert np.array_equal(a, b)


# --- the reference: pandas operators ----------------------------------------------

def ref_zscore(s, w, ddof=1):
    std = s.rolling(w, min_periods=w).std(ddof=ddof)
    return (s - s.rolling(w, min_periods=w).mean()) / std.where(std > 0)


def ref_gain_loss(close, period):
    delta = close.diff()
    return ind.wilder(delta.clip(lower=0.0), period), ind.wilder((-delta).clip(lower=0.0), period)


def ref_rsi(close, period, flat=np.nan):
    gain, loss = ref_gain_loss(close, period)
    value = 100.0 - 100.0 / (1.0 + gain / loss)
    return value if np.isnan(flat) else value.where(value.notna() | gain.isna(), flat)


def ref_centred_rsi(close, period):
    gain, loss = ref_gain_loss(close, period)
    total = gain + loss
    return ((gain - loss) / total.where(total > 0)).fillna(0.0).where(gain.notna())


def ref_bands(close, w, width):
    mid = ind.sma(close, w)
    std = ind.rolling_std(close, w)
    return mid - width * std, mid, mid + width * std


def ref_true_range(high, low, close, from_first_bar=False):
    prev = close.shift(1)
    legs = np.vstack([(high - low).to_numpy(), (high - prev).abs().to_numpy(), (low - prev).abs().to_numpy()])
    return pd.Series(np.fmax.reduce(legs, axis=0) if from_first_bar else legs.max(axis=0), index=close.index)


def ref_efficiency_ratio(close, w, flat=0.0):
    net = (close - close.shift(w)).abs()
    path = close.diff().abs().rolling(w, min_periods=w).sum()
    return (net / path.where(path > 0.0)).where(path != 0.0, flat).where(path.notna())


INDICATORS = {
    "zscore": (lambda f: ind.zscore(f["close"], 20), lambda f: ref_zscore(f["close"], 20)),
    "zscore of volume, ddof 0": (lambda f: ind.zscore(f["volume"], 10, ddof=0),
                                 lambda f: ref_zscore(f["volume"], 10, 0)),
    "roc": (lambda f: ind.roc(f["close"], 12), lambda f: f["close"] / f["close"].shift(12) - 1.0),
    "log_returns": (lambda f: ind.log_returns(f["close"]), lambda f: np.log(f["close"]).diff()),
    "log_momentum": (lambda f: ind.log_momentum(f["close"], 24),
                     lambda f: np.log(f["close"]) - np.log(f["close"]).shift(24)),
    "average gain": (lambda f: ind.average_gain_loss(f["close"], 14)[0], lambda f: ref_gain_loss(f["close"], 14)[0]),
    "average loss": (lambda f: ind.average_gain_loss(f["close"], 14)[1], lambda f: ref_gain_loss(f["close"], 14)[1]),
    "rsi": (lambda f: ind.rsi(f["close"], 14), lambda f: ref_rsi(f["close"], 14)),
    "rsi flat 100": (lambda f: ind.rsi(f["close"], 5, flat=100.0), lambda f: ref_rsi(f["close"], 5, 100.0)),
    "centred_rsi": (lambda f: ind.centred_rsi(f["close"], 7), lambda f: ref_centred_rsi(f["close"], 7)),
    "macd_line": (lambda f: ind.macd_line(f["close"], 12, 26),
                  lambda f: ind.ema(f["close"], 12) - ind.ema(f["close"], 26)),
    "bollinger lower": (lambda f: ind.bollinger_bands(f["close"], 20, 2.0)[0], lambda f: ref_bands(f["close"], 20, 2.0)[0]),
    "bollinger upper": (lambda f: ind.bollinger_bands(f["close"], 20, 2.0)[2], lambda f: ref_bands(f["close"], 20, 2.0)[2]),
    "percent_b": (lambda f: ind.bollinger_percent_b(f["close"], 20, 2.0),
                  lambda f: (f["close"] - ref_bands(f["close"], 20, 2.0)[0])
                  / (2.0 * 2.0 * ind.rolling_std(f["close"], 20))),
    "donchian lower": (lambda f: ind.donchian_channel(f["high"], f["low"], 20)[0],
                       lambda f: f["low"].rolling(20, min_periods=20).min().shift(1)),
    "donchian upper": (lambda f: ind.donchian_channel(f["high"], f["low"], 20)[1],
                       lambda f: f["high"].rolling(20, min_periods=20).max().shift(1)),
    "true_range": (lambda f: ind.true_range(f["high"], f["low"], f["close"]),
                   lambda f: ref_true_range(f["high"], f["low"], f["close"])),
    "true_range from the first bar": (lambda f: ind.true_range(f["high"], f["low"], f["close"], from_first_bar=True),
                                      lambda f: ref_true_range(f["high"], f["low"], f["close"], True)),
    "keltner lower": (lambda f: ind.keltner_channel(f["high"], f["low"], f["close"], 20, 1.5)[0],
                      lambda f: ind.sma(f["close"], 20) - 1.5 * ind.sma(ref_true_range(f["high"], f["low"], f["close"]), 20)),
    "obv": (lambda f: ind.obv(f["close"], f["volume"]),
            lambda f: (np.sign(f["close"].diff()).fillna(0.0) * f["volume"]).cumsum()),
    "rolling_vwap": (lambda f: ind.rolling_vwap(f["high"], f["low"], f["close"], f["volume"], 24),
                     lambda f: (((f["high"] + f["low"] + f["close"]) / 3.0) * f["volume"]).rolling(24).sum()
                     / f["volume"].rolling(24).sum().where(f["volume"].rolling(24).sum() > 0)),
    "log_volume": (lambda f: ind.log_volume(f["volume"]), lambda f: np.log(f["volume"].where(f["volume"] > 0.0))),
    "efficiency_ratio": (lambda f: ind.efficiency_ratio(f["close"], 20), lambda f: ref_efficiency_ratio(f["close"], 20)),
    "efficiency_ratio flat NaN": (lambda f: ind.efficiency_ratio(f["close"], 10, flat=np.nan),
                                  lambda f: ref_efficiency_ratio(f["close"], 10, np.nan)),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's np.log of 0 and of negatives
@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("name", INDICATORS)
def test_indicator_equals_its_pandas_form(name, frame):
    mine, reference = INDICATORS[name]
    assert_same(mine(FRAMES[frame]), reference(FRAMES[frame]))


def ref_held(*flags):
    return sig.hold_positions(*flags)


def ref_signals(f: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    close, high, low, volume = f["close"], f["high"], f["low"], f["volume"]
    out = {}
    out["ema"] = np.sign(ind.ema(close, p["fast"]) - ind.ema(close, p["slow"]))
    out["sma"] = np.sign(ind.sma(close, p["fast"]) - ind.sma(close, p["slow"]))
    ma = ind.sma(close, p["length"])
    lagged = ma.shift(p["lag"])
    out["maslope"] = pd.Series(np.where((close > ma) & (ma > lagged), 1.0, np.where((close < ma) & (ma < lagged), -1.0, 0.0)),
                               index=close.index).where(lagged.notna())
    strength = ref_rsi(close, p["fast"], 100.0)
    centre = np.sign(strength - 50.0)
    crossed = centre != centre.shift(1)
    out["rsi"] = ref_held(strength < 50.0 - p["band"], strength > 50.0 + p["band"], crossed, crossed).where(strength.notna())
    z = ref_zscore(close, p["length"])
    calm = z.abs() < p["exit"]
    out["zscore"] = ref_held(z < -p["entry"], z > p["entry"], calm, calm).where(ind.sma(close, p["length"]).notna())
    lower, mid, upper = ref_bands(close, p["length"], p["width"])
    out["bbrev"] = ref_held(close < lower, close > upper, close >= mid, ~(close >= mid)).where(mid.notna())
    out["bbbreak"] = ref_held(close > upper, close < lower, close < mid, close > mid).where(mid.notna())
    exit_len = max(2, int(p["length"] * p["frac"]))
    dl, du = ind.donchian_channel(high, low, p["length"])
    el, eu = ind.donchian_channel(high, low, exit_len)
    out["donchian"] = ref_held(close > du, close < dl, close < el, close > eu).where(du.notna())
    prior = ind.atr(high, low, close, p["fast"], from_first_bar=True).shift(1)
    move = close - close.shift(1)
    entries = pd.Series(np.where(move > p["width"] * prior, 1.0, np.where(move < -p["width"] * prior, -1.0, np.nan)),
                        index=close.index)
    out["atrbreak"] = entries.ffill(limit=p["hold"] - 1).fillna(0.0).where(prior.notna())
    vol = ind.rolling_std(close.pct_change(), p["fast"])
    reference = vol.rolling(10 * p["fast"], min_periods=p["fast"]).median()
    direction = np.sign(ind.ema(close, p["slow"], min_periods=0).diff())
    out["voltarget"] = direction * (p["scale"] * reference / vol.where(vol > 0.0)).clip(upper=1.0)
    noise = ind.rolling_std(close.pct_change(), p["length"]) * np.sqrt(p["length"])
    change = ind.roc(close, p["length"])
    out["roc"] = pd.Series(np.where(change > p["scale"] * noise, 1.0, np.where(change < -p["scale"] * noise, -1.0, 0.0)),
                           index=close.index).where(noise.notna())
    ret = np.log(close).diff()
    t_stat = ret.rolling(p["length"], min_periods=p["length"]).sum() / (ind.rolling_std(ret, p["length"]) * np.sqrt(p["length"]))
    out["tsmom"] = (p["scale"] * t_stat).clip(-1.0, 1.0)
    volume_log = np.log(volume.where(volume > 0.0))
    spread = ind.rolling_std(volume_log, p["length"])
    volume_z = (volume_log - ind.sma(volume_log, p["length"])) / spread.where(spread > 0)
    spikes = pd.Series(np.where(volume_z > p["entry"], np.sign(close - f["open"]), np.nan), index=close.index)
    out["volz"] = spikes.ffill(limit=p["hold"] - 1).fillna(0.0).where(spread.notna())
    balance = (np.sign(close.diff()).fillna(0.0) * volume).cumsum()
    out["obv"] = np.sign(ind.ema(balance, p["fast"]) - ind.ema(balance, p["slow"]))
    out["trendf"] = ref_efficiency_ratio(close, p["length"], np.nan) >= p["frac"]
    out["rangef"] = ref_efficiency_ratio(close, p["length"], np.nan) <= p["frac"]
    realised = ind.rolling_std(np.log(close).diff(), p["fast"])
    out["calmf"] = realised <= realised.rolling(10 * p["fast"], min_periods=p["fast"]).quantile(p["frac"])
    out["volumef"] = ref_zscore(np.log(volume.where(volume > 0.0)), p["length"]) >= -p["exit"]
    return out


def my_signals(f: pd.DataFrame, p: dict) -> dict[str, pd.Series]:
    return {
        "ema": sig.ema_crossover(f, p["fast"], p["slow"]), "sma": sig.sma_crossover(f, p["fast"], p["slow"]),
        "maslope": sig.ma_slope_trend(f, p["length"], p["lag"]),
        "rsi": sig.rsi_band_reversion(f, p["fast"], p["band"]),
        "zscore": sig.zscore_band_reversion(f, p["length"], p["entry"], p["exit"]),
        "bbrev": sig.bollinger_band_reversion(f, p["length"], p["width"]),
        "bbbreak": sig.bollinger_band_breakout(f, p["length"], p["width"]),
        "donchian": sig.donchian_channel_breakout(f, p["length"], p["frac"]),
        "atrbreak": sig.atr_expansion(f, p["fast"], p["width"], p["hold"]),
        "voltarget": sig.volatility_targeted_trend(f, p["fast"], p["slow"], p["scale"]),
        "roc": sig.roc_threshold(f, p["length"], p["scale"]),
        "tsmom": sig.tstat_momentum(f, p["length"], p["scale"]),
        "volz": sig.volume_spike_follow(f, p["length"], p["entry"], p["hold"]),
        "obv": sig.obv_crossover(f, p["fast"], p["slow"]),
        "trendf": sig.trending_filter(f, p["length"], p["frac"]),
        "rangef": sig.ranging_filter(f, p["length"], p["frac"]),
        "calmf": sig.calm_filter(f, p["fast"], p["frac"]),
        "volumef": sig.volume_filter(f, p["length"], -p["exit"]),
    }


PARAMS = [
    {"fast": 5, "slow": 40, "length": 20, "lag": 4, "band": 15.0, "entry": 1.5, "exit": 0.3, "width": 2.0,
     "frac": 0.5, "hold": 6, "scale": 0.8},
    {"fast": 14, "slow": 200, "length": 120, "lag": 24, "band": 30.0, "entry": 2.5, "exit": 0.0, "width": 1.0,
     "frac": 0.2, "hold": 2, "scale": 1.5},
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("frame", ["market", "flat and no volume", "short"])
@pytest.mark.parametrize("params", PARAMS, ids=["typical", "long windows"])
def test_signal_rules_equal_their_pandas_forms(frame, params):
    f = FRAMES[frame]
    mine, reference = my_signals(f, params), ref_signals(f, params)
    assert mine.keys() == reference.keys()
    for rule in mine:
        try:
            assert_same(mine[rule], reference[rule])
        except AssertionError as err:
            raise AssertionError(f"{rule}: {err}") from err


def test_forward_fill_limit_is_the_pandas_one_and_at_least_one_bar():
    values = np.array([np.nan, 1.0, np.nan, np.nan, np.nan, 2.0, np.nan])
    for limit in (1, 2, 5):
        assert np.array_equal(ind.ffill_limited(values, limit), pd.Series(values).ffill(limit=limit).to_numpy(),
                              equal_nan=True)
    with pytest.raises(ValueError, match="at least 1 bar"):
        ind.ffill_limited(values, 0)
