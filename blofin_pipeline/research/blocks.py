"""Building blocks the offline designer composes into new strategy files.

A strategy is assembled from one *signal* block (an indicator plus its entry/exit rule:
cross, threshold, breakout, ...), at most one *filter* block (a volatility, regime or
volume condition that must hold for a position to be taken) and a *direction* (long and
short, or long only). Each block's rule is a function of `strategies.signals`; this table
only describes the blocks: key, category, the parameters with their spaces and which
function argument each feeds. `render_strategy` writes a short strategy file that imports
those functions, so it passes the static check's allow-list, and every rule is causal.
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.research.strategy_source import literal_for, plain
from blofin_pipeline.strategies import NAME_MAX, signals

SIGNALS_MODULE = signals.__name__


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter: its space (low, high), the range defaults are drawn from, and
    the keyword argument of the block's function it feeds."""

    name: str
    low: float
    high: float
    default_low: float
    default_high: float
    arg: str = ""

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def draw(self, rng: np.random.Generator) -> int | float:
        """A default inside [default_low, default_high], rounded to the parameter's kind."""
        value = rng.uniform(self.default_low, self.default_high)
        if self.integer:
            return int(min(self.high, max(self.low, round(value))))
        return float(min(self.high, max(self.low, round(value, 3))))


@dataclass(frozen=True)
class Block:
    """A rule of `strategies.signals`: a position (kind "signal") or a permission (kind "filter")."""

    key: str
    kind: str
    description: str
    function: Callable[..., pd.Series]
    params: tuple[ParamSpec, ...] = ()
    category: str | None = None
    #: Categories a filter suits (empty: any).
    suits: tuple[str, ...] = ()

    def call_text(self) -> str:
        """The call of the block's function in a generated file, e.g. ``f(candles, fast=p["ema_fast"])``."""
        args = ", ".join(f'{spec.arg}=p["{spec.name}"]' for spec in self.params)
        return f"{self.function.__name__}(candles, {args})"


SIGNAL_BLOCKS: tuple[Block, ...] = (
    Block("ema", "signal", "EMA crossover: long when the fast EMA is above the slow EMA, short below",
          signals.ema_crossover,
          (ParamSpec("ema_fast", 3, 40, 6, 20, arg="fast"),
           ParamSpec("ema_slow", 20, 240, 30, 120, arg="slow")),
          category="trend"),
    Block("sma", "signal", "SMA crossover: long when the fast SMA is above the slow SMA, short below",
          signals.sma_crossover,
          (ParamSpec("sma_fast", 3, 40, 5, 20, arg="fast"),
           ParamSpec("sma_slow", 20, 240, 40, 150, arg="slow")),
          category="trend"),
    Block("maslope", "signal",
          "price versus a rising or falling SMA: long above a rising SMA, short below a falling one",
          signals.ma_slope_trend,
          (ParamSpec("ma_len", 20, 300, 40, 160, arg="length"), ParamSpec("ma_lag", 2, 48, 4, 24, arg="lag")),
          category="trend"),
    Block("rsi", "signal",
          "RSI threshold: long when RSI falls below 50-band, short above 50+band, flat when it crosses 50",
          signals.rsi_band_reversion,
          (ParamSpec("rsi_len", 5, 40, 7, 21, arg="length"),
           ParamSpec("rsi_band", 10.0, 35.0, 15.0, 25.0, arg="band")),
          category="mean_reversion"),
    Block("zscore", "signal",
          "z-score reversion: short when close is z_entry sigmas above its rolling mean, long below, "
          "flat once |z| < z_exit",
          signals.zscore_band_reversion,
          (ParamSpec("z_len", 10, 200, 20, 80, arg="length"),
           ParamSpec("z_entry", 1.0, 3.0, 1.5, 2.5, arg="entry_z"),
           ParamSpec("z_exit", 0.0, 0.9, 0.1, 0.6, arg="exit_z")),
          category="mean_reversion"),
    Block("bbrev", "signal",
          "Bollinger reversion: long below the lower band, short above the upper band, exit at the middle",
          signals.bollinger_band_reversion,
          (ParamSpec("bbr_len", 10, 200, 20, 60, arg="length"),
           ParamSpec("bbr_k", 1.0, 3.5, 1.8, 2.6, arg="width")),
          category="mean_reversion"),
    Block("donchian", "signal",
          "Donchian breakout: long on a close above the previous n-bar high, short below the n-bar low, "
          "exit on the opposite shorter channel",
          signals.donchian_channel_breakout,
          (ParamSpec("dc_len", 10, 300, 20, 120, arg="length"),
           ParamSpec("dc_exit_frac", 0.2, 0.9, 0.3, 0.6, arg="exit_frac")),
          category="breakout"),
    Block("bbbreak", "signal",
          "Bollinger breakout: long on a close above the upper band, short below the lower band, "
          "exit back through the middle",
          signals.bollinger_band_breakout,
          (ParamSpec("bbb_len", 10, 200, 20, 80, arg="length"),
           ParamSpec("bbb_k", 1.0, 3.5, 1.8, 2.6, arg="width")),
          category="breakout"),
    Block("atrbreak", "signal",
          "ATR expansion: follow a bar that moves more than k ATRs, for a fixed number of bars",
          signals.atr_expansion,
          (ParamSpec("atr_len", 5, 100, 10, 40, arg="length"),
           ParamSpec("atr_mult", 0.5, 4.0, 1.0, 2.5, arg="mult"),
           ParamSpec("atr_hold", 2, 96, 4, 24, arg="hold")),
          category="volatility"),
    Block("voltarget", "signal",
          "volatility-targeted trend: EMA direction, sized down when realised volatility is above its "
          "own median",
          signals.volatility_targeted_trend,
          (ParamSpec("vt_len", 10, 150, 20, 60, arg="length"),
           ParamSpec("vt_trend", 10, 200, 20, 100, arg="trend_span"),
           ParamSpec("vt_scale", 0.3, 1.5, 0.6, 1.0, arg="scale")),
          category="volatility"),
    Block("roc", "signal",
          "rate-of-change threshold: long when the n-bar return exceeds thr times its own volatility, "
          "short below minus that",
          signals.roc_threshold,
          (ParamSpec("roc_len", 3, 200, 6, 72, arg="length"),
           ParamSpec("roc_thr", 0.0, 2.0, 0.2, 1.0, arg="threshold")),
          category="momentum"),
    Block("tsmom", "signal",
          "time-series momentum: position proportional to the t-statistic of the last n log returns",
          signals.tstat_momentum,
          (ParamSpec("tsm_len", 3, 240, 6, 96, arg="length"),
           ParamSpec("tsm_gain", 0.2, 3.0, 0.5, 2.0, arg="gain")),
          category="momentum"),
    Block("volz", "signal",
          "volume spike: follow the direction of a bar whose log-volume z-score exceeds thr, "
          "for a fixed number of bars",
          signals.volume_spike_follow,
          (ParamSpec("vz_len", 10, 200, 24, 96, arg="length"),
           ParamSpec("vz_thr", 0.5, 3.5, 1.0, 2.5, arg="threshold"),
           ParamSpec("vz_hold", 2, 48, 3, 12, arg="hold")),
          category="volume"),
    Block("obv", "signal",
          "on-balance volume trend: long when the fast EMA of OBV is above its slow EMA, short below",
          signals.obv_crossover,
          (ParamSpec("obv_fast", 3, 40, 5, 20, arg="fast"),
           ParamSpec("obv_slow", 20, 240, 30, 100, arg="slow")),
          category="volume"),
)

FILTER_BLOCKS: tuple[Block, ...] = (
    Block("trendf", "filter", "trades only while the efficiency ratio shows a trend (ER >= erf_min)",
          signals.trending_filter,
          (ParamSpec("erf_len", 10, 200, 24, 96, arg="length"),
           ParamSpec("erf_min", 0.05, 0.6, 0.08, 0.22, arg="min_er")),
          suits=("trend", "momentum", "volatility", "volume")),
    Block("rangef", "filter", "trades only while the efficiency ratio shows a range (ER <= erl_max)",
          signals.ranging_filter,
          (ParamSpec("erl_len", 10, 200, 24, 96, arg="length"),
           ParamSpec("erl_max", 0.05, 0.6, 0.2, 0.4, arg="max_er")),
          suits=("mean_reversion", "breakout")),
    Block("calmf", "filter", "stands aside when realised volatility is above its volf_q rolling quantile",
          signals.calm_filter,
          (ParamSpec("volf_len", 10, 100, 12, 48, arg="length"),
           ParamSpec("volf_q", 0.5, 0.95, 0.7, 0.9, arg="quantile")),
          suits=("trend", "mean_reversion", "momentum", "volume")),
    Block("volumef", "filter", "trades only on bars whose log-volume z-score is at least volm_min",
          signals.volume_filter,
          (ParamSpec("volm_len", 10, 200, 24, 96, arg="length"),
           ParamSpec("volm_min", -1.5, 1.5, -0.5, 0.5, arg="min_z")),
          suits=("trend", "breakout", "momentum", "volatility")),
)

DIRECTIONS: Mapping[str, str] = {"ls": "long and short", "lo": "long only"}


def signal_blocks(category: str | None = None) -> list[Block]:
    """Signal blocks, optionally of one category."""
    return [b for b in SIGNAL_BLOCKS if category is None or b.category == category]


def filter_blocks(category: str | None = None) -> list[Block]:
    """Filter blocks suiting a category (all when None)."""
    return [b for b in FILTER_BLOCKS if category is None or not b.suits or category in b.suits]


def block_categories() -> list[str]:
    """Categories that have at least one signal block."""
    return list(dict.fromkeys(b.category for b in SIGNAL_BLOCKS if b.category))


def find_block(key: str) -> Block:
    for block in (*SIGNAL_BLOCKS, *FILTER_BLOCKS):
        if block.key == key:
            return block
    raise StrategyError(f"unknown building block {key!r}")


@dataclass(frozen=True)
class Composition:
    """A choice of blocks and default parameters; `render_strategy` turns it into code."""

    category: str
    signal: Block
    filter: Block | None
    direction: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blocks_tag(self) -> str:
        parts = [self.signal.key]
        if self.filter is not None:
            parts.append(self.filter.key)
        if self.direction != "ls":
            parts.append(self.direction)
        return "_".join(parts)

    @property
    def param_space(self) -> dict[str, tuple[Any, Any]]:
        specs = list(self.signal.params) + (list(self.filter.params) if self.filter else [])
        return {s.name: (s.low, s.high) for s in specs}

    def describe(self) -> str:
        text = self.signal.description
        if self.filter is not None:
            text += "; " + self.filter.description
        return text + f"; {DIRECTIONS[self.direction]}"


def draw_composition(
    category: str, rng: np.random.Generator, *, signal_key: str | None = None
) -> Composition:
    """Pick a signal block of `category`, maybe a filter and a direction, and draw defaults."""
    candidates = signal_blocks(category)
    if not candidates:
        raise StrategyError(f"no building block for category {category!r}")
    signal = find_block(signal_key) if signal_key else candidates[int(rng.integers(len(candidates)))]
    filters = filter_blocks(category)
    # One draw in three goes without a filter: plain rules stay in the mix.
    pick = int(rng.integers(len(filters) + max(1, len(filters) // 2)))
    chosen_filter = filters[pick] if pick < len(filters) else None
    direction = "lo" if rng.random() < 0.25 else "ls"
    specs = list(signal.params) + (list(chosen_filter.params) if chosen_filter else [])
    params = {s.name: s.draw(rng) for s in specs}
    return Composition(category, signal, chosen_filter, direction, params)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _docstring(comp: Composition, rationale: str) -> str:
    text = textwrap.fill(f"Generated by the offline designer from building blocks: {comp.describe()}.", width=88)
    if rationale:
        text += "\n\n" + textwrap.fill(f"Rationale: {rationale}", width=88)
    # Nothing in the docstring may end it early or look like a dunder to the static check.
    text = text.replace('"""', "'''").replace("\\", "/")
    return re.sub(r"__(\w+)__", r"\1", text)


def _signals_body(comp: Composition) -> list[str]:
    body = ["p = self.params", f"# Signal: {comp.signal.description}", f"signal = {comp.signal.call_text()}"]
    finish = "finish_positions(signal"
    if comp.filter is not None:
        body += [f"# Filter: {comp.filter.description}", f"allow = {comp.filter.call_text()}"]
        finish += ", allow"
    if comp.direction == "lo":
        finish += ", long_only=True"
    return body + [f"return {finish})"]


def render_strategy(composition: Composition, name: str, rationale: str = "") -> str:
    """The complete strategy file for a composition, with the given name."""
    if not re.fullmatch(rf"[a-z][a-z0-9_]{{0,{NAME_MAX - 1}}}", name):
        raise StrategyError(f"strategy name {name!r} is not a snake_case identifier of at most {NAME_MAX} chars")
    comp = composition
    used = [comp.signal.function.__name__, "finish_positions"]
    if comp.filter is not None:
        used.insert(1, comp.filter.function.__name__)
    lines = [
        f'"""{_docstring(comp, rationale)}\n"""',
        "import pandas as pd",
        "",
        "from blofin_pipeline.strategies import Strategy",
        f"from {SIGNALS_MODULE} import {', '.join(sorted(used))}",
        "",
        "",
        f"class {_camel(name)}(Strategy):",
        f"    name = {name!r}",
        f"    category = {comp.category!r}",
        f"    params = {literal_for('params', plain(dict(comp.params)), ' ' * 4)}",
        f"    param_space = {literal_for('param_space', comp.param_space, ' ' * 4)}",
        "",
        "    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:",
        *(" " * 8 + line for line in _signals_body(comp)),
        "",
    ]
    return "\n".join(lines)
