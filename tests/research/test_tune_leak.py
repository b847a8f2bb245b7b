"""The tuner leak (issue 11, item 1): on pure noise a kept tuned version must not score better
than its parent.

Every tunable built-in is tuned with Optuna on random-walk candles (several seeds); each
version the tune step would register is scored the way the DAG scores it
(`backtest.scoring.score_one` with its lineage) beside its parent:

* on the tuning day's own window (every fold tests at or before fitted_until) it is scored
  exactly as its parent, and the old path (its own defaults on that window) is measured for
  the note;
* on a later date's window (the last folds test after fitted_until) tuned minus parent
  out-of-sample Sharpe has |t| < 2.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest.scoring import score_one
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.research.tuner import tune_strategy
from blofin_pipeline.strategies import builtin_strategies, builtin_strategy_sources
from blofin_pipeline.strategies.runner import signal_function

SYMBOLS = ("NOISE-USDT", "RANDOM-USDT")  # each item is scored on its mean over symbols
WINDOW_DAYS = 120           # the scoring window (and the candles handed to the tuner)
LATER_DAYS = 45             # a later date: its window's last two of four folds test after fitted_until
SEEDS = range(6)            # x 14 tunable built-ins = 84 tunes (the audit's count)
START = pd.Timestamp("2025-01-01", tz="UTC")


def noise_candles(seed: int, days: int) -> pd.DataFrame:
    """Hourly random-walk candles: i.i.d. normal log returns, no edge of any kind."""
    rng = np.random.default_rng(seed)
    n = days * 24
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.008, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    index = pd.date_range(START, periods=n, freq="1h", name="ts")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.lognormal(3.0, 0.5, n)}, index=index)


class WithDefaults:
    """A signal function with other default params: the tuned version of a built-in (its
    file is the built-in's with the tuned params written in)."""

    def __init__(self, fn: Any, params: dict[str, Any]) -> None:
        self.fn, self.params, self.param_space = fn, dict(params), dict(fn.param_space)

    def __call__(self, candles: pd.DataFrame, params: dict | None = None) -> pd.Series:
        return self.fn(candles, params)


@dataclass
class Figures:
    tunes: int = 0
    kept: list[tuple[str, int]] = None           # (strategy, seed) of the kept versions
    old_same_span: list[float] = None            # old path: tuned (own defaults) - parent, tuning window
    new_same_span: list[float] = None            # fitted_until rule, tuning window
    new_later: list[float] = None                # fitted_until rule, a later date's window

    def __post_init__(self) -> None:
        self.kept, self.old_same_span, self.new_same_span, self.new_later = [], [], [], []


def _ctx(data_end: pd.Timestamp, tmp_path) -> RunContext:
    config = PipelineConfig(symbols=SYMBOLS, history_days=WINDOW_DAYS + LATER_DAYS, score_window_days=WINDOW_DAYS)
    return RunContext.create(logical_date=data_end.normalize(), data_end=data_end, config=config,
                             db_url=f"sqlite:///{tmp_path / 'unused.sqlite'}", workspace=tmp_path)


def _sharpe(ctx: RunContext, ref: tuple[str, int], fn: Any, candles: dict[str, pd.DataFrame], fitted=()) -> float:
    """Mean over symbols of the out-of-sample Sharpe `score_one` reports (0 for a symbol
    without a trade: flat earns nothing; its Sharpe is undefined)."""
    rows = [score_one(ctx, ref[0], ref[1], fn, s, c, 1, "score", (c.index[0], c.index[-1]), fitted)
            for s, c in candles.items()]
    sharpes = [0.0 if r["n_trades"] == 0 and r["exposure"] == 0 else r["sharpe"] for r in rows]
    assert all(math.isfinite(v) for v in sharpes), (ref, rows)
    return float(np.mean(sharpes))


def _t(values: list[float]) -> float:
    a = np.asarray(values)
    assert a.size > 1 and np.isfinite(a).all(), values
    return float(a.mean() / (a.std(ddof=1) / math.sqrt(a.size))) if a.std() > 0 else 0.0


def _tune_all(tmp_path) -> Figures:
    classes, sources = builtin_strategies(), builtin_strategy_sources()
    out = Figures()
    for seed in SEEDS:
        candles = {s: noise_candles(1000 + 10 * seed + i, WINDOW_DAYS + LATER_DAYS) for i, s in enumerate(SYMBOLS)}
        tuning = {s: c.iloc[:WINDOW_DAYS * 24] for s, c in candles.items()}
        later = {s: c.iloc[LATER_DAYS * 24:] for s, c in candles.items()}
        tuning_end, later_end = (next(iter(w.values())).index[-1] for w in (tuning, later))
        for name in sorted(sources):
            if not classes[name].param_space:
                continue
            fn = signal_function(sources[name], origin="builtin", label=name)
            ctx = _ctx(tuning_end, tmp_path)
            res = tune_strategy(fn, sources[name], tuning, n_trials=ctx.config.tune_trials,
                                seed=seed, costs=ctx.config.costs, version=1)
            out.tunes += 1
            if res.candidate is None or res.improved is False:   # what tune_strategies registers
                continue
            out.kept.append((name, seed))
            tuned, parent = WithDefaults(fn, res.params), (name, 1)
            # the lineage as the registry gives it back (params, space as stored JSON)
            fitted = [(res.candidate.meta["fitted_until"], json.loads(json.dumps(fn.params)),
                       json.loads(json.dumps({k: list(v) for k, v in fn.param_space.items()})), f"{name}@1")]
            me = (res.candidate.name, 1)
            base = _sharpe(ctx, parent, fn, tuning)
            out.old_same_span.append(_sharpe(ctx, me, tuned, tuning) - base)
            out.new_same_span.append(_sharpe(ctx, me, tuned, tuning, fitted) - base)
            later_ctx = _ctx(later_end, tmp_path)
            out.new_later.append(_sharpe(later_ctx, me, tuned, later, fitted) - _sharpe(later_ctx, parent, fn, later))
    return out


@pytest.mark.slow
def test_kept_tuned_versions_do_not_beat_their_parents_on_noise(tmp_path):
    fig = _tune_all(tmp_path)
    print(f"\ntunes {fig.tunes}, kept {len(fig.kept)}")
    for label, diffs in (("old path, tuning window", fig.old_same_span),
                         ("fitted_until rule, tuning window", fig.new_same_span),
                         ("fitted_until rule, later window", fig.new_later)):
        print(f"{label}: tuned - parent OOS Sharpe mean {np.mean(diffs):+.3f}, t {_t(diffs):+.2f}, n {len(diffs)}")
    assert fig.tunes >= 60 and len(fig.kept) >= 20, fig.kept
    # on the bars its parameters were fitted on, a tuned version is scored exactly as its parent
    assert fig.new_same_span == [0.0] * len(fig.kept)
    # after them, it gains nothing on noise
    assert abs(_t(fig.new_later)) < 2.0
