"""The lookahead gate: which parameter sets it checks, the dense spans, the hook for sets
chosen later, the frame it needs, and the sparse-peek catch rate."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest import scoring
from blofin_pipeline.backtest.scoring import candidate_seed
from blofin_pipeline.backtest.walkforward import sample_candidates
from blofin_pipeline.config import PipelineConfig
from blofin_pipeline.exceptions import DataValidationError
from blofin_pipeline.strategies import load_strategy_source
from blofin_pipeline.strategies.checks import check_strategy
from blofin_pipeline.strategies.gate import (
    MAX_CORNERS,
    GateSpans,
    check_params,
    corner_sets,
    gate_frame,
    parameter_sets,
    run_gate,
)
from blofin_pipeline.strategies.lookahead import DENSE_BARS, dense_bars_for, dense_check
from blofin_pipeline.strategies.runner import BATCH_CHILDREN, SandboxedStrategy
from blofin_pipeline.strategies.sandbox import SandboxSession
from blofin_pipeline.strategies.testdata import check_candles

CORPUS = Path(__file__).parent / "corpus"
CANDLES = check_candles()
SPANS = GateSpans()


def lagged(candles, params):
    return np.sign(candles["close"].pct_change().shift(params["lag"])).fillna(0.0)


def test_dense_span_length_is_the_catch_probability_bound():
    assert DENSE_BARS == dense_bars_for(0.002, 0.99) == 2301
    assert 1 - 0.998 ** DENSE_BARS >= 0.99 > 1 - 0.998 ** (DENSE_BARS - 1)
    assert SPANS.required_bars == 2301 + 720 + 1


def test_the_sets_are_exactly_those_scoring_will_try(monkeypatch):
    """score_one's own call to walk_forward, captured: its candidate sets are checked."""
    seen = {}

    def capture(candles, fn, defaults, space, *, n_candidates, seed, **_):
        seen.update(defaults=defaults, space=space, n=n_candidates, seed=seed)
        raise RuntimeError("captured")

    monkeypatch.setattr(scoring, "walk_forward", capture)
    fn = SimpleNamespace(params={"lag": 0, "k": 1.5}, param_space={"lag": (-2, 2), "k": (0.5, 3.0)})
    ctx = SimpleNamespace(config=PipelineConfig())
    with pytest.raises(RuntimeError, match="captured"):
        scoring.score_one(ctx, "peeker", 7, fn, "BTC-USDT", CANDLES, 1, "candidate", None)
    scored = sample_candidates(seen["defaults"], seen["space"], seen["n"], seen["seed"])
    checked = parameter_sets(fn.params, fn.param_space, seed=candidate_seed("peeker", 7),
                             n_candidates=PipelineConfig().wf_candidates)
    assert len(scored) == PipelineConfig().wf_candidates + 1
    assert all(params in [p for _, p in checked] for params in scored)
    assert checked[0] == ("defaults", {"lag": 0, "k": 1.5})
    labels = [label for label, _ in checked]
    assert labels.count("corner 1") == 1 and len(labels) == len(set(labels))


def test_corners_all_when_few_capped_when_many():
    space2 = {"a": (1, 9), "b": (0.1, 0.9)}
    corners = corner_sets({"a": 5, "b": 0.5, "c": "x"}, space2)
    assert sorted((c["a"], c["b"]) for c in corners) == [(1, 0.1), (1, 0.9), (9, 0.1), (9, 0.9)]
    assert all(c["c"] == "x" for c in corners)
    space6 = {k: (0, 10) for k in "abcdef"}
    many = corner_sets({k: 5 for k in space6}, space6, seed=3)
    assert len(many) == MAX_CORNERS == len({tuple(c.values()) for c in many})
    assert {k: 0 for k in space6} in many and {k: 10 for k in space6} in many
    assert many == corner_sets({k: 5 for k in space6}, space6, seed=3)


def test_parameter_lag_is_rejected_and_a_causal_space_is_not():
    report = run_gate(lagged, CANDLES, seed=1, n_candidates=6, defaults={"lag": 0},
                      param_space={"lag": (-2, 2)})
    assert not report.ok and report.failed_set != "defaults"
    assert report.lookahead.params["lag"] < 0 and "depends on later bars" in report.detail
    honest = run_gate(lagged, CANDLES, seed=1, n_candidates=6, defaults={"lag": 0},
                      param_space={"lag": (0, 2)})
    assert honest.ok, honest.detail
    assert {p["lag"] for _, p in honest.sets} == {0, 1, 2}
    assert honest.runs > DENSE_BARS + SPANS.warmup_bars


def test_the_hook_checks_a_later_set_in_the_sandbox():
    code = (CORPUS / "lookahead_param_lag.py").read_text()
    with SandboxedStrategy(code, origin="hook") as fn:
        bad = check_params(fn, {"lag": -1}, CANDLES)
        good = check_params(fn, {"lag": 2}, CANDLES)
    assert not bad.ok and bad.params == {"lag": -1} and bad.first_bad_bar == bad.cut_bar
    assert good.ok and len(good.checked_bars) == 10


def test_one_sandbox_request_per_batch_of_cuts(monkeypatch):
    calls = []
    original = SandboxSession._call

    def counting(self, header, *args, **kwargs):
        calls.append(header.get("op"))
        return original(self, header, *args, **kwargs)

    monkeypatch.setattr(SandboxSession, "_call", counting)
    code = (CORPUS / "clean_sma_trend.py").read_text()
    with SandboxedStrategy(code, origin="batch") as fn:
        calls.clear()
        report = dense_check(fn, CANDLES, span="recent")
    assert report.ok and report.check == "dense recent"
    # the reference frame, then the 2301 cuts: one request to each of the two children
    # (the second one loaded for the split) where there are two cores, else one
    expected = ["prefixes", "load", "prefixes", "prefixes"] if BATCH_CHILDREN == 2 else ["prefixes"] * 2
    assert sorted(calls) == sorted(expected)


def test_a_split_batch_gives_the_same_values_as_one_child():
    code = (CORPUS / "lookahead_sparse_volume.py").read_text()
    cuts = np.arange(2500, 3199)
    with SandboxedStrategy(code, origin="split") as fn:
        split = fn.prefixes(CANDLES, None, 2000, cuts, last_only=True)
        whole = np.concatenate([fn.prefixes(CANDLES, None, 2000, part, last_only=True)
                                for part in np.array_split(cuts, 4)])  # below SPLIT_CUTS
    np.testing.assert_array_equal(split, whole)
    assert split.shape == (699,)


def _peek_at(stamps: pd.DatetimeIndex):
    """Causal, except that at the given bars it reads the next close."""
    def fn(candles):
        close = candles["close"]
        peek = np.sign(close.shift(-1) - close)
        return np.sign(close.diff()).where(~candles.index.isin(stamps), peek).fillna(0.0)
    return fn


def test_dense_recent_span_covers_every_bar_of_the_last_2301():
    n = len(CANDLES)
    first, last = n - 1 - DENSE_BARS, n - 2
    report = dense_check(_peek_at(CANDLES.index[[first, first + 1234, last]]), CANDLES,
                         span="recent")
    assert not report.ok and report.first_bad_bar == first
    assert f"3 of {DENSE_BARS} bars differ" in report.detail
    assert dense_check(_peek_at(CANDLES.index[[first - 1]]), CANDLES, span="recent").ok


def test_warm_up_bfill_is_caught_on_every_first_bar():
    def backfilled(candles):
        close = candles["close"]
        return np.sign(close - close.rolling(30).mean().bfill()).fillna(0.0)

    report = dense_check(backfilled, CANDLES, span="warm-up")
    assert not report.ok and report.first_bad_bar == 0 and "29 of 720 bars differ" in report.detail
    assert dense_check(lambda c: np.sign(c["close"] - c["close"].rolling(30).mean()).fillna(0.0),
                       CANDLES, span="warm-up").ok


def test_a_frame_too_short_is_an_error_naming_the_bars_needed():
    with pytest.raises(DataValidationError, match="at least 3022 bars .* given 3021"):
        run_gate(lagged, CANDLES.iloc[:3021], seed=0, n_candidates=2, defaults={"lag": 0},
                 param_space={})
    with pytest.raises(DataValidationError, match="given 1000"):
        check_strategy((CORPUS / "clean_sma_trend.py").read_text(), check_candles(1000))
    frame, note = gate_frame(CANDLES.iloc[:500])
    assert len(frame) == 3022 and "only 500 bars" in note
    assert gate_frame(CANDLES)[0] is CANDLES


SPARSE = load_strategy_source((CORPUS / "lookahead_sparse_volume.py").read_text(), origin="sparse")


def _peek_bars_in_span(candles: pd.DataFrame) -> int:
    volume = candles["volume"]
    spike = volume > volume.expanding(min_periods=200).quantile(0.998).shift(1)
    n = len(candles)
    return int(spike.iloc[n - 1 - DENSE_BARS: n - 1].sum())


def test_sparse_peek_caught_exactly_where_it_peeks_and_in_19_of_20_windows():
    """The dense check flags exactly the peek bars in its span (one window run); so a
    window is caught iff it holds a peek bar there, counted over 40 seeded windows (the
    slow test below runs the whole gate on 20)."""
    candles = check_candles(2600, seed=1)
    report = dense_check(SPARSE, candles, span="recent", history=250)
    peeks = _peek_bars_in_span(candles)
    assert peeks > 0 and not report.ok
    assert f"{peeks} of {DENSE_BARS} bars differ" in report.detail
    caught = [_peek_bars_in_span(check_candles(3100, seed=100 + s)) > 0 for s in range(40)]
    assert sum(caught) >= 38, sum(caught)


@pytest.mark.slow
def test_sparse_peek_gate_catch_rate_over_20_windows():
    caught = 0
    for seed in range(20):
        report = run_gate(SPARSE, check_candles(3100, seed=500 + seed), seed=seed, n_candidates=6)
        caught += not report.ok
    assert caught >= 19, caught
