"""The designer: offline compositions from building blocks, and the online mapping."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import LLMResponseError, StrategyError
from blofin_pipeline.llm.schemas import DesignedStrategy, DesignReply
from blofin_pipeline.market.sample import generate_candles
from blofin_pipeline.research.blocks import (
    FILTER_BLOCKS,
    SIGNAL_BLOCKS,
    Composition,
    render_strategy,
)
from blofin_pipeline.research.candidates import Candidate
from blofin_pipeline.research.designer import (
    DesignContext,
    design,
    design_prompt_context,
)
from blofin_pipeline.research.regime import detect_regimes
from blofin_pipeline.research.strategy_source import (
    read_class_literals,
    rewrite_class_attrs,
)
from blofin_pipeline.strategies import code_hash, load_strategy_source
from blofin_pipeline.strategies.checks import check_strategy
from blofin_pipeline.strategies.lookahead import check_lookahead
from blofin_pipeline.strategies.safety import static_check
from tests.fakes.llm import ScriptedCaller

SYMBOLS = ("BTC-USDT", "ETH-USDT")
START = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def candles() -> dict[str, pd.DataFrame]:
    end = START + pd.Timedelta(days=30)
    return {s: generate_candles(s, "1H", START, end) for s in SYMBOLS}


@pytest.fixture(scope="module")
def context(candles) -> DesignContext:
    strategies = (
        {"name": "ema_cross", "category": "trend", "scores": {"BTC-USDT": 0.6, "ETH-USDT": 0.4},
         "metrics": {"sharpe": 1.1}, "params": {"fast": 12}, "code": "class X: pass"},
        {"name": "rsi_revert", "category": "mean_reversion", "scores": {"BTC-USDT": 0.3, "ETH-USDT": 0.2}},
        {"name": "momentum_roc_abcdef", "category": "momentum", "scores": {"BTC-USDT": -0.9, "ETH-USDT": -0.7}},
        {"name": "macd", "category": "trend", "scores": {"BTC-USDT": 0.1, "ETH-USDT": 0.1}},
    )
    return DesignContext(run_date="2024-01-31", symbols=SYMBOLS, regimes=detect_regimes(candles),
                         strategies=strategies, screen_candles=candles["BTC-USDT"])


def test_every_block_combination_passes_the_static_and_lookahead_checks(candles):
    frame = candles["ETH-USDT"].iloc[:400]
    rng = np.random.default_rng(3)
    for signal in SIGNAL_BLOCKS:
        for flt in (None, *FILTER_BLOCKS):
            specs = list(signal.params) + (list(flt.params) if flt else [])
            comp = Composition(signal.category, signal, flt, "ls", {s.name: s.draw(rng) for s in specs})
            code = render_strategy(comp, f"probe_{signal.key}", "a rationale with __dunder__ text")
            assert static_check(code) == [], (signal.key, flt and flt.key)
            cls = load_strategy_source(code)
            assert cls.param_space == comp.param_space
            report = check_lookahead(cls, frame, n_samples=6)
            assert report.ok, (signal.key, flt and flt.key, report.detail)


def test_offline_design_fills_the_gap_categories_with_distinct_checked_candidates(context):
    cands = design(context, 3, seed=7)
    assert len(cands) == 3
    assert len({c.name for c in cands}) == 3 and len({c.code_hash for c in cands}) == 3
    gaps = context.resolved_gaps()
    gap_order = list(dict.fromkeys(g["category"] for g in gaps))
    assert [c.category for c in cands] == gap_order[:3]
    for cand in cands:
        assert cand.origin == "designer" and cand.parent is None
        assert cand.name.startswith(cand.category + "_") and len(cand.name) <= 64
        assert cand.rationale and cand.category in cand.rationale
        assert read_class_literals(cand.code, "name", "params") == {"name": cand.name, "params": cand.params}
        report = check_strategy(cand.code)
        assert report.accepted, report.reasons
        assert report.name == cand.name and report.category == cand.category


def test_same_seed_same_candidates_other_day_or_seed_differs(context):
    first = design(context, 3, seed=1)
    again = design(context, 3, seed=1)
    assert [c.to_dict() for c in first] == [c.to_dict() for c in again]
    next_day = design(
        replace(context, run_date="2024-02-01"), 3, seed=1)
    assert {c.name for c in next_day}.isdisjoint({c.name for c in first})
    other_seed = design(context, 3, seed=2)
    assert [c.name for c in other_seed] != [c.name for c in first]


def test_tried_names_and_hashes_are_never_proposed_again(context):
    first = design(context, 3, seed=1)
    names, hashes = frozenset(c.name for c in first), frozenset(code_hash(c.code) for c in first)
    retry = design(
        replace(context, tried_names=names, tried_hashes=hashes), 3, seed=1)
    assert len(retry) == 3
    assert {c.name for c in retry}.isdisjoint(names)
    assert {c.code_hash for c in retry}.isdisjoint(hashes)


def test_bottom_performer_blocks_are_avoided_and_screening_drops_idle_rules(context):
    cands = design(context, 6, seed=11)
    momentum = [c for c in cands if c.category == "momentum"]
    assert momentum and all(c.meta["signal"] != "roc" for c in momentum)
    for cand in cands:
        positions = load_strategy_source(cand.code)().signals(context.screen_candles)
        assert (positions != 0).mean() >= 0.02


def test_rewrite_class_attrs_keeps_the_rest_of_the_file(context):
    cand = design(context, 1, seed=3)[0]
    new_params = {k: v for k, v in cand.params.items()}
    first_key = next(iter(new_params))
    low, high = load_strategy_source(cand.code).param_space[first_key]
    new_params[first_key] = high
    code = rewrite_class_attrs(cand.code, {"name": "renamed_x", "params": new_params})
    cls = load_strategy_source(code)
    assert cls.name == "renamed_x" and cls.params[first_key] == high
    assert code.split("def generate_signals")[1] == cand.code.split("def generate_signals")[1]
    with pytest.raises(StrategyError):
        rewrite_class_attrs(cand.code, {"missing_attr": 1})


VALID_CODE = '''import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class LlmTrend(Strategy):
    name = "llm_trend"
    category = "trend"
    params = {"span": 20}
    param_space = {"span": (5, 100)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        ema = candles["close"].ewm(span=int(self.params["span"]), adjust=False).mean()
        return pd.Series(np.where(candles["close"] > ema, 1.0, -1.0), index=candles.index)
'''


def test_online_design_maps_the_reply_and_drops_tried_duplicates(context):
    old_code = VALID_CODE.replace("llm_trend", "old_one")
    llm = ScriptedCaller([DesignReply(strategies=[
        DesignedStrategy(name="llm_trend", category="trend", rationale="fills the trend gap", code=VALID_CODE),
        DesignedStrategy(name="ema_cross", category="trend", rationale="same name as a live one", code=VALID_CODE + "\n"),
        DesignedStrategy(name="old_one", category="trend", rationale="code tried before", code=old_code),
    ])])

    ctx = replace(context, tried_hashes=frozenset({code_hash(old_code)}),
                  rejected=({"name": "bad_one", "reasons": ["lookahead: peeks"]},))
    cands = design(ctx, 3, llm=llm, seed=0)
    assert [c.name for c in cands] == ["llm_trend"]
    assert isinstance(cands[0], Candidate) and cands[0].params == {"span": 20}
    assert cands[0].origin == "designer" and cands[0].meta["mode"] == "llm"
    [call] = llm.calls
    assert call.step == "design" and call.reply_type is DesignReply
    prompt_text = call.prompt.user + "".join(block["text"] for block in call.prompt.system)
    assert "bad_one" in prompt_text and "lookahead: peeks" in prompt_text
    assert "ema_cross" in prompt_text and "design 3 new strategies" in call.prompt.user


def test_online_design_passes_its_categories_and_a_rejected_reply_propagates(context):
    payload = {"strategies": [{"name": "llm_trend", "category": "trend", "rationale": "r", "code": VALID_CODE}]}
    llm = ScriptedCaller([payload])
    assert [c.name for c in design(context, 1, llm=llm)] == ["llm_trend"]
    assert llm.calls[0].categories == list(context.categories)
    with pytest.raises(LLMResponseError):
        design(context, 1, llm=ScriptedCaller([{"strategies": []}]))
    outside = {"strategies": [{**payload["strategies"][0], "category": "not_a_category"}]}
    with pytest.raises(LLMResponseError, match="not_a_category"):
        design(context, 1, llm=ScriptedCaller([outside]))


def test_online_design_reconciles_the_file_with_the_reply(context, caplog):
    """The reply's name and category win over the file's class attributes, with the reason logged;
    a default outside its bounds is clipped into them."""
    code = (VALID_CODE.replace('name = "llm_trend"', 'name = "something_else"')
            .replace('params = {"span": 20}', 'params = {"span": 500}'))
    llm = ScriptedCaller([{"strategies": [{"name": "llm_vol", "category": "volatility", "rationale": "r",
                                           "code": code}]}])
    with caplog.at_level("INFO", logger="blofin_pipeline.research.reconcile"):
        [cand] = design(context, 1, llm=llm)
    from blofin_pipeline.research.strategy_source import read_class_literals

    declared = read_class_literals(cand.code, "name", "category", "params")
    assert declared == {"name": "llm_vol", "category": "volatility", "params": {"span": 100}}
    assert cand.params == {"span": 100} and len(cand.meta["reconciled"]) == 3
    assert "'something_else' rewritten to 'llm_vol', the reply's name" in caplog.text
    assert "category 'trend' rewritten to 'volatility'" in caplog.text
    unreadable = {"strategies": [{"name": "llm_x", "category": "trend", "rationale": "r", "code": "class ("}]}
    [kept] = design(context, 1, llm=ScriptedCaller([unreadable]))  # the checks will reject it, with reasons
    assert kept.code == "class (" and kept.meta["reconciled"][0].startswith("not reconciled: ")


def test_prompt_context_shows_gaps_regimes_and_performers(context):
    ctx = design_prompt_context(context, 2)
    assert ctx["n_strategies"] == 2
    assert ctx["portfolio"]["gaps"] and set(ctx["regimes"]) == set(SYMBOLS)
    assert ctx["top_performers"][0]["name"] == "ema_cross"
    assert ctx["top_performers"][0]["code"] == "class X: pass"
    assert ctx["bottom_performers"][0]["name"] == "momentum_roc_abcdef"


def test_every_builtin_file_can_be_renamed_and_reparameterised_without_running_it():
    from blofin_pipeline.strategies import builtin_strategy_sources

    for name, code in builtin_strategy_sources().items():
        literals = read_class_literals(code, "name", "params", "param_space")
        assert literals["name"] == name
        params = dict(literals["params"])
        key = sorted(literals["param_space"])[0]
        params[key] = literals["param_space"][key][1]
        rewritten = rewrite_class_attrs(code, {"name": f"{name}_tabcdef", "params": params}, owner=name)
        assert static_check(rewritten) == []
        cls = load_strategy_source(rewritten)
        assert cls.name == f"{name}_tabcdef" and cls.params == params
