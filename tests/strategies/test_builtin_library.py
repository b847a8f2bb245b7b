"""The built-in library as a whole: coverage, sources, and all three checks."""
from __future__ import annotations

import numpy as np
import pytest

from blofin_pipeline.strategies import (
    CATEGORIES,
    Strategy,
    builtin_strategies,
    builtin_strategy_sources,
    load_strategy_source,
)
from blofin_pipeline.strategies.checks import check_strategy
from blofin_pipeline.strategies.lookahead import check_lookahead
from blofin_pipeline.strategies.testdata import check_candles

NAMES = sorted(builtin_strategies())


def test_library_size_and_category_coverage():
    strategies = builtin_strategies()
    assert len(strategies) >= 12
    assert {cls.category for cls in strategies.values()} == set(CATEGORIES)
    for name, cls in strategies.items():
        assert cls.name == name and issubclass(cls, Strategy)
        assert cls.description
        assert set(cls.param_space) == set(cls.params), name  # every knob is tunable


def test_sources_load_to_equivalent_classes():
    sources = builtin_strategy_sources()
    assert set(sources) == set(NAMES)
    candles = check_candles(300)
    for name, code in sources.items():
        cls = load_strategy_source(code, origin=f"{name}.py")
        original = builtin_strategies()[name]
        assert (cls.name, cls.category, cls.params) == (original.name, original.category,
                                                        original.params)
        assert cls().signals(candles).equals(original().signals(candles))


def _random_params(cls: type[Strategy], rng: np.random.Generator) -> dict:
    params = {}
    for key, (low, high) in cls.param_space.items():
        if isinstance(low, int) and isinstance(high, int):
            params[key] = int(rng.integers(low, min(high, 300) + 1))
        else:
            params[key] = float(rng.uniform(low, high))
    return params


@pytest.mark.parametrize("name", NAMES)
def test_builtin_is_causal_across_its_param_space(name):
    cls = builtin_strategies()[name]
    candles = check_candles(800)
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(4):
        params = _random_params(cls, rng)
        report = check_lookahead(cls, candles, params=params, n_samples=12)
        assert report.ok, (params, report.detail)


@pytest.mark.parametrize("name", NAMES)
def test_builtin_passes_all_three_checks(name):
    report = check_strategy(builtin_strategy_sources()[name], timeout=60)
    assert report.accepted, report.reasons
    assert (report.name, report.category) == (name, builtin_strategies()[name].category)
    assert [report.stages[s]["status"] for s in ("static", "sandbox", "lookahead")] == [
        "passed"] * 3
    assert report.stages["lookahead"]["checked_bars"]
    assert 0.0 < report.stages["sandbox"]["exposure"] <= 1.0  # it does trade
