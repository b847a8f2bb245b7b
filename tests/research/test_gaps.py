"""Coverage gaps: uncovered (category x regime x symbol) cells, ranked by priority."""
from __future__ import annotations

import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.research.gaps import (
    EMPTY_CATEGORY_BONUS,
    coverage_gaps,
    gap_categories,
    regime_fit,
)

REGIMES = {
    "BTC-USDT": {"trend": "up", "volatility": "normal"},
    "ETH-USDT": {"trend": "range", "volatility": "low"},
}
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def test_covered_cells_are_not_gaps():
    strategies = [{"name": "ema", "category": "trend", "scores": {"BTC-USDT": 0.8, "ETH-USDT": 0.1}}]
    gaps = coverage_gaps(strategies, REGIMES, SYMBOLS, ["trend"])
    assert gaps == []


def test_a_poor_score_leaves_a_gap_naming_the_best_strategy():
    strategies = [
        {"name": "ema", "category": "trend", "scores": {"BTC-USDT": 0.8, "ETH-USDT": -0.4}},
        {"name": "sma", "category": "trend", "scores": {"BTC-USDT": 0.2, "ETH-USDT": -0.1}},
    ]
    gaps = coverage_gaps(strategies, REGIMES, SYMBOLS, ["trend"])
    assert [(g["category"], g["symbol"]) for g in gaps] == [("trend", "ETH-USDT")]
    gap = gaps[0]
    assert gap["best_strategy"] == "sma" and gap["best_score"] == pytest.approx(-0.1)
    assert gap["regime"] == "range/low" and gap["n_strategies"] == 2
    assert gap["deficit"] == pytest.approx(0.1)


def test_empty_category_outranks_and_fit_orders_the_rest():
    strategies = [
        {"name": "ema", "category": "trend", "scores": {"BTC-USDT": -1.0, "ETH-USDT": -1.0}},
        {"name": "rsi", "category": "mean_reversion", "scores": {"BTC-USDT": -1.0, "ETH-USDT": -1.0}},
    ]
    gaps = coverage_gaps(strategies, REGIMES, SYMBOLS, ["trend", "mean_reversion", "breakout"])
    assert len(gaps) == 6
    assert gaps[0]["category"] == "breakout"
    assert gaps[0]["priority"] == pytest.approx(regime_fit("breakout", gaps[0]["trend"], gaps[0]["volatility"]) * 2
                                                + EMPTY_CATEGORY_BONUS)
    # Trend followers are missed more in the trending symbol, mean reversion in the ranging one.
    trend = {g["symbol"]: g["priority"] for g in gaps if g["category"] == "trend"}
    mr = {g["symbol"]: g["priority"] for g in gaps if g["category"] == "mean_reversion"}
    assert trend["BTC-USDT"] > trend["ETH-USDT"]
    assert mr["ETH-USDT"] > mr["BTC-USDT"]
    priorities = [g["priority"] for g in gaps]
    assert priorities == sorted(priorities, reverse=True)
    order = gap_categories(gaps, 3)
    assert order[0] == "breakout" and sorted(order) == ["breakout", "mean_reversion", "trend"]
    assert gap_categories(gaps, 1) == ["breakout"]


def test_regime_specific_scores_take_precedence():
    strategies = [{"name": "ema", "category": "trend", "scores": {"BTC-USDT": 0.9},
                   "regime_scores": {"BTC-USDT": {"up/normal": -0.3}}}]
    gaps = coverage_gaps(strategies, REGIMES, ["BTC-USDT"], ["trend"])
    assert len(gaps) == 1 and gaps[0]["best_score"] == pytest.approx(-0.3)


def test_dict_scores_unknown_regime_and_missing_symbol():
    strategies = [{"name": "ema", "category": "trend", "scores": {"BTC-USDT": {"score": 0.5}}}]
    gaps = coverage_gaps(strategies, {}, ["BTC-USDT", "SOL-USDT"], ["trend"], min_score=0.0)
    assert [g["symbol"] for g in gaps] == ["SOL-USDT"]
    assert gaps[0]["regime"] == "unknown/unknown" and gaps[0]["best_strategy"] is None
    assert "no trend strategy scored on SOL-USDT" in gaps[0]["reason"]


def test_deterministic_and_validated():
    a = coverage_gaps([], REGIMES, SYMBOLS)
    b = coverage_gaps([], REGIMES, list(reversed(SYMBOLS)))
    assert a == b
    with pytest.raises(ConfigError):
        coverage_gaps([{"category": "trend"}], REGIMES, SYMBOLS)
    with pytest.raises(ConfigError):
        coverage_gaps([], REGIMES, SYMBOLS, score_scale=0)
