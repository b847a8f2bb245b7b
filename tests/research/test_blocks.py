"""The block table: each block names a real rule function, and rendered files stay short and allowed."""
from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.research.blocks import (
    FILTER_BLOCKS,
    SIGNAL_BLOCKS,
    Composition,
    draw_composition,
    find_block,
    render_strategy,
)
from blofin_pipeline.strategies import signals
from blofin_pipeline.strategies.safety import static_check


@pytest.mark.parametrize("block", (*SIGNAL_BLOCKS, *FILTER_BLOCKS), ids=lambda b: b.key)
def test_each_block_feeds_every_argument_of_an_exported_rule(block):
    assert block.function.__module__ == signals.__name__
    assert block.function.__name__ in signals.__all__
    parameters = list(inspect.signature(block.function).parameters)
    assert parameters[0] == "candles"
    assert sorted(spec.arg for spec in block.params) == sorted(parameters[1:])
    for spec in block.params:
        assert spec.low <= spec.default_low <= spec.default_high <= spec.high, spec.name
    assert block.kind == ("signal" if block in SIGNAL_BLOCKS else "filter")


def test_block_keys_and_parameter_names_are_unique():
    keys = [b.key for b in (*SIGNAL_BLOCKS, *FILTER_BLOCKS)]
    names = [s.name for b in (*SIGNAL_BLOCKS, *FILTER_BLOCKS) for s in b.params]
    assert len(keys) == len(set(keys)) and len(names) == len(set(names))
    with pytest.raises(StrategyError, match="unknown building block"):
        find_block("nope")


def test_rendered_file_imports_the_rules_it_calls_and_nothing_else():
    ema, calm = find_block("ema"), find_block("calmf")
    comp = Composition("trend", ema, calm, "lo", {s.name: s.default_low for s in (*ema.params, *calm.params)})
    code = render_strategy(comp, "trend_ema_calmf_lo_abc123", 'a """quoted""" rationale')
    assert static_check(code) == []
    tree = ast.parse(code)
    imported = {alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.module == signals.__name__ for alias in node.names}
    assert imported == {"ema_crossover", "calm_filter", "finish_positions"}
    assert 'signal = ema_crossover(candles, fast=p["ema_fast"], slow=p["ema_slow"])' in code
    assert "return finish_positions(signal, allow, long_only=True)" in code
    assert len(code.splitlines()) < 40


def test_render_rejects_a_bad_name():
    comp = draw_composition("trend", np.random.default_rng(0))
    with pytest.raises(StrategyError, match="snake_case"):
        render_strategy(comp, "Bad-Name")
