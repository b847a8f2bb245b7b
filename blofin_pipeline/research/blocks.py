"""Building blocks the offline designer composes into new strategy files.

A strategy is assembled from one *signal* block (an indicator plus its entry/exit rule:
cross, threshold, breakout, ...), at most one *filter* block (a volatility, regime or
volume condition that must hold for a position to be taken) and a *direction* (long and
short, or long only). `render_strategy` writes the result as a complete Python file that
follows the strategy contract and the static check's allow-list: it imports only numpy,
pandas and `blofin_pipeline.strategies.Strategy`, uses no dunder and no private
attribute, and every indicator is a trailing window (rolling, ewm, shift(+k), cumsum,
forward fill), so the signal at bar t uses only bars up to t.

The helpers at the end read and rewrite a strategy file's literal class attributes
(`name`, `params`) without executing it; the tuner uses them to write tuned defaults
into a copy of a file.
"""
from __future__ import annotations

import ast
import hashlib
import math
import pprint
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blofin_pipeline.exceptions import StrategyError

INDENT = " " * 8
NAME_MAX = 64


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter: its space (low, high) and the range defaults are drawn from."""

    name: str
    low: float
    high: float
    default_low: float
    default_high: float

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
    """A code fragment computing `signal` (kind "signal") or `allow` (kind "filter")."""

    key: str
    kind: str
    description: str
    code: str
    params: tuple[ParamSpec, ...] = ()
    category: str | None = None
    uses_hold: bool = False
    #: Categories a filter suits (empty: any).
    suits: tuple[str, ...] = ()


# --- signal blocks ----------------------------------------------------------------
# Each fragment runs inside generate_signals with `p = self.params`, `close`, `high`,
# `low`, `open_`, `volume` bound, and must leave a float Series `signal` (NaN allowed in
# the warm-up) on the candles' index.

SIGNAL_BLOCKS: tuple[Block, ...] = (
    Block(
        "ema", "signal", "EMA crossover: long when the fast EMA is above the slow EMA, short below",
        """
        fast = int(p["ema_fast"])
        slow = max(int(p["ema_slow"]), fast + 1)
        ema_fast = close.ewm(span=fast, adjust=False, min_periods=fast).mean()
        ema_slow = close.ewm(span=slow, adjust=False, min_periods=slow).mean()
        signal = np.sign(ema_fast - ema_slow)
        """,
        (ParamSpec("ema_fast", 3, 40, 6, 20), ParamSpec("ema_slow", 20, 240, 30, 120)),
        category="trend",
    ),
    Block(
        "sma", "signal", "SMA crossover: long when the fast SMA is above the slow SMA, short below",
        """
        fast = int(p["sma_fast"])
        slow = max(int(p["sma_slow"]), fast + 1)
        sma_fast = close.rolling(fast, min_periods=fast).mean()
        sma_slow = close.rolling(slow, min_periods=slow).mean()
        signal = np.sign(sma_fast - sma_slow)
        """,
        (ParamSpec("sma_fast", 3, 40, 5, 20), ParamSpec("sma_slow", 20, 240, 40, 150)),
        category="trend",
    ),
    Block(
        "maslope", "signal",
        "price versus a rising or falling SMA: long above a rising SMA, short below a falling one",
        """
        length = int(p["ma_len"])
        lag = int(p["ma_lag"])
        ma = close.rolling(length, min_periods=length).mean()
        rising = ma > ma.shift(lag)
        falling = ma < ma.shift(lag)
        signal = pd.Series(np.where((close > ma) & rising, 1.0,
                                    np.where((close < ma) & falling, -1.0, 0.0)), index=close.index)
        signal = signal.where(ma.shift(lag).notna())
        """,
        (ParamSpec("ma_len", 20, 300, 40, 160), ParamSpec("ma_lag", 2, 48, 4, 24)),
        category="trend",
    ),
    Block(
        "rsi", "signal",
        "RSI threshold: long when RSI falls below 50-band, short above 50+band, flat when it crosses 50",
        """
        length = int(p["rsi_len"])
        band = float(p["rsi_band"])
        delta = close.diff()
        gain = delta.clip(lower=0.0).ewm(alpha=1.0 / length, adjust=False, min_periods=length).mean()
        loss = (-delta).clip(lower=0.0).ewm(alpha=1.0 / length, adjust=False, min_periods=length).mean()
        rsi = 100.0 - 100.0 / (1.0 + gain / loss.where(loss > 0.0))
        rsi = rsi.where(loss > 0.0, 100.0).where(gain.notna())
        centre = np.sign(rsi - 50.0)
        crossed = centre != centre.shift(1)
        signal = hold_positions(rsi < 50.0 - band, rsi > 50.0 + band, crossed, crossed)
        signal = signal.where(rsi.notna())
        """,
        (ParamSpec("rsi_len", 5, 40, 7, 21), ParamSpec("rsi_band", 10.0, 35.0, 15.0, 25.0)),
        category="mean_reversion", uses_hold=True,
    ),
    Block(
        "zscore", "signal",
        "z-score reversion: short when close is z_entry sigmas above its rolling mean, long below, "
        "flat once |z| < z_exit",
        """
        length = int(p["z_len"])
        mean = close.rolling(length, min_periods=length).mean()
        std = close.rolling(length, min_periods=length).std()
        z = (close - mean) / std.where(std > 0.0)
        entry = float(p["z_entry"])
        calm = z.abs() < float(p["z_exit"])
        signal = hold_positions(z < -entry, z > entry, calm, calm)
        signal = signal.where(mean.notna())
        """,
        (ParamSpec("z_len", 10, 200, 20, 80), ParamSpec("z_entry", 1.0, 3.0, 1.5, 2.5),
         ParamSpec("z_exit", 0.0, 0.9, 0.1, 0.6)),
        category="mean_reversion", uses_hold=True,
    ),
    Block(
        "bbrev", "signal",
        "Bollinger reversion: long below the lower band, short above the upper band, exit at the middle",
        """
        length = int(p["bbr_len"])
        width = float(p["bbr_k"])
        mid = close.rolling(length, min_periods=length).mean()
        std = close.rolling(length, min_periods=length).std()
        above_mid = close >= mid
        signal = hold_positions(close < mid - width * std, close > mid + width * std, above_mid, ~above_mid)
        signal = signal.where(mid.notna())
        """,
        (ParamSpec("bbr_len", 10, 200, 20, 60), ParamSpec("bbr_k", 1.0, 3.5, 1.8, 2.6)),
        category="mean_reversion", uses_hold=True,
    ),
    Block(
        "donchian", "signal",
        "Donchian breakout: long on a close above the previous n-bar high, short below the n-bar low, "
        "exit on the opposite shorter channel",
        """
        length = int(p["dc_len"])
        exit_len = max(2, int(length * float(p["dc_exit_frac"])))
        upper = high.rolling(length, min_periods=length).max().shift(1)
        lower = low.rolling(length, min_periods=length).min().shift(1)
        exit_upper = high.rolling(exit_len, min_periods=exit_len).max().shift(1)
        exit_lower = low.rolling(exit_len, min_periods=exit_len).min().shift(1)
        signal = hold_positions(close > upper, close < lower, close < exit_lower, close > exit_upper)
        signal = signal.where(upper.notna())
        """,
        (ParamSpec("dc_len", 10, 300, 20, 120), ParamSpec("dc_exit_frac", 0.2, 0.9, 0.3, 0.6)),
        category="breakout", uses_hold=True,
    ),
    Block(
        "bbbreak", "signal",
        "Bollinger breakout: long on a close above the upper band, short below the lower band, "
        "exit back through the middle",
        """
        length = int(p["bbb_len"])
        width = float(p["bbb_k"])
        mid = close.rolling(length, min_periods=length).mean()
        std = close.rolling(length, min_periods=length).std()
        signal = hold_positions(close > mid + width * std, close < mid - width * std, close < mid, close > mid)
        signal = signal.where(mid.notna())
        """,
        (ParamSpec("bbb_len", 10, 200, 20, 80), ParamSpec("bbb_k", 1.0, 3.5, 1.8, 2.6)),
        category="breakout", uses_hold=True,
    ),
    Block(
        "atrbreak", "signal",
        "ATR expansion: follow a bar that moves more than k ATRs, for a fixed number of bars",
        """
        length = int(p["atr_len"])
        prev_close = close.shift(1)
        true_range = pd.concat([high - low, (high - prev_close).abs(), (low - prev_close).abs()], axis=1).max(axis=1)
        atr = true_range.ewm(alpha=1.0 / length, adjust=False, min_periods=length).mean().shift(1)
        move = close - prev_close
        mult = float(p["atr_mult"])
        entries = pd.Series(np.where(move > mult * atr, 1.0, np.where(move < -mult * atr, -1.0, np.nan)),
                            index=close.index)
        signal = entries.ffill(limit=int(p["atr_hold"]) - 1).fillna(0.0).where(atr.notna())
        """,
        (ParamSpec("atr_len", 5, 100, 10, 40), ParamSpec("atr_mult", 0.5, 4.0, 1.0, 2.5),
         ParamSpec("atr_hold", 2, 96, 4, 24)),
        category="volatility",
    ),
    Block(
        "voltarget", "signal",
        "volatility-targeted trend: EMA direction, sized down when realised volatility is above its "
        "own median",
        """
        length = int(p["vt_len"])
        ret = close.pct_change()
        vol = ret.rolling(length, min_periods=length).std()
        reference = vol.rolling(10 * length, min_periods=length).median()
        direction = np.sign(close.ewm(span=int(p["vt_trend"]), adjust=False).mean().diff())
        size = (float(p["vt_scale"]) * reference / vol.where(vol > 0.0)).clip(upper=1.0)
        signal = direction * size
        """,
        (ParamSpec("vt_len", 10, 150, 20, 60), ParamSpec("vt_trend", 10, 200, 20, 100),
         ParamSpec("vt_scale", 0.3, 1.5, 0.6, 1.0)),
        category="volatility",
    ),
    Block(
        "roc", "signal",
        "rate-of-change threshold: long when the n-bar return exceeds thr times its own volatility, "
        "short below minus that",
        """
        length = int(p["roc_len"])
        roc = close.pct_change(length)
        noise = close.pct_change().rolling(length, min_periods=length).std() * np.sqrt(length)
        threshold = float(p["roc_thr"]) * noise
        signal = pd.Series(np.where(roc > threshold, 1.0, np.where(roc < -threshold, -1.0, 0.0)),
                           index=close.index).where(noise.notna())
        """,
        (ParamSpec("roc_len", 3, 200, 6, 72), ParamSpec("roc_thr", 0.0, 2.0, 0.2, 1.0)),
        category="momentum",
    ),
    Block(
        "tsmom", "signal",
        "time-series momentum: position proportional to the t-statistic of the last n log returns",
        """
        length = int(p["tsm_len"])
        ret = np.log(close).diff()
        t_stat = ret.rolling(length, min_periods=length).sum() / (
            ret.rolling(length, min_periods=length).std() * np.sqrt(length))
        signal = (float(p["tsm_gain"]) * t_stat).clip(-1.0, 1.0)
        """,
        (ParamSpec("tsm_len", 3, 240, 6, 96), ParamSpec("tsm_gain", 0.2, 3.0, 0.5, 2.0)),
        category="momentum",
    ),
    Block(
        "volz", "signal",
        "volume spike: follow the direction of a bar whose log-volume z-score exceeds thr, "
        "for a fixed number of bars",
        """
        length = int(p["vz_len"])
        log_volume = np.log(volume.where(volume > 0.0))
        spread = log_volume.rolling(length, min_periods=length).std()
        volume_z = (log_volume - log_volume.rolling(length, min_periods=length).mean()) / spread.where(spread > 0.0)
        direction = np.sign(close - open_)
        entries = pd.Series(np.where(volume_z > float(p["vz_thr"]), direction, np.nan), index=close.index)
        signal = entries.ffill(limit=int(p["vz_hold"]) - 1).fillna(0.0).where(spread.notna())
        """,
        (ParamSpec("vz_len", 10, 200, 24, 96), ParamSpec("vz_thr", 0.5, 3.5, 1.0, 2.5),
         ParamSpec("vz_hold", 2, 48, 3, 12)),
        category="volume",
    ),
    Block(
        "obv", "signal",
        "on-balance volume trend: long when the fast EMA of OBV is above its slow EMA, short below",
        """
        fast = int(p["obv_fast"])
        slow = max(int(p["obv_slow"]), fast + 1)
        obv = (np.sign(close.diff()).fillna(0.0) * volume).cumsum()
        obv_fast = obv.ewm(span=fast, adjust=False, min_periods=fast).mean()
        obv_slow = obv.ewm(span=slow, adjust=False, min_periods=slow).mean()
        signal = np.sign(obv_fast - obv_slow)
        """,
        (ParamSpec("obv_fast", 3, 40, 5, 20), ParamSpec("obv_slow", 20, 240, 30, 100)),
        category="volume",
    ),
)

# --- filter blocks ----------------------------------------------------------------
# Each fragment leaves a boolean Series `allow`; where it is False the position is 0.

FILTER_BLOCKS: tuple[Block, ...] = (
    Block(
        "trendf", "filter", "trades only while the efficiency ratio shows a trend (ER >= erf_min)",
        """
        f_len = int(p["erf_len"])
        f_path = close.diff().abs().rolling(f_len, min_periods=f_len).sum()
        f_er = (close - close.shift(f_len)).abs() / f_path.where(f_path > 0.0)
        allow = f_er >= float(p["erf_min"])
        """,
        (ParamSpec("erf_len", 10, 200, 24, 96), ParamSpec("erf_min", 0.05, 0.6, 0.08, 0.22)),
        suits=("trend", "momentum", "volatility", "volume"),
    ),
    Block(
        "rangef", "filter", "trades only while the efficiency ratio shows a range (ER <= erl_max)",
        """
        f_len = int(p["erl_len"])
        f_path = close.diff().abs().rolling(f_len, min_periods=f_len).sum()
        f_er = (close - close.shift(f_len)).abs() / f_path.where(f_path > 0.0)
        allow = f_er <= float(p["erl_max"])
        """,
        (ParamSpec("erl_len", 10, 200, 24, 96), ParamSpec("erl_max", 0.05, 0.6, 0.2, 0.4)),
        suits=("mean_reversion", "breakout"),
    ),
    Block(
        "calmf", "filter",
        "stands aside when realised volatility is above its volf_q rolling quantile",
        """
        f_len = int(p["volf_len"])
        f_vol = np.log(close).diff().rolling(f_len, min_periods=f_len).std()
        f_cap = f_vol.rolling(10 * f_len, min_periods=f_len).quantile(float(p["volf_q"]))
        allow = f_vol <= f_cap
        """,
        (ParamSpec("volf_len", 10, 100, 12, 48), ParamSpec("volf_q", 0.5, 0.95, 0.7, 0.9)),
        suits=("trend", "mean_reversion", "momentum", "volume"),
    ),
    Block(
        "volumef", "filter", "trades only on bars whose log-volume z-score is at least volm_min",
        """
        f_len = int(p["volm_len"])
        f_logv = np.log(volume.where(volume > 0.0))
        f_spread = f_logv.rolling(f_len, min_periods=f_len).std()
        f_z = (f_logv - f_logv.rolling(f_len, min_periods=f_len).mean()) / f_spread.where(f_spread > 0.0)
        allow = f_z >= float(p["volm_min"])
        """,
        (ParamSpec("volm_len", 10, 200, 24, 96), ParamSpec("volm_min", -1.5, 1.5, -0.5, 0.5)),
        suits=("trend", "breakout", "momentum", "volatility"),
    ),
)

DIRECTIONS: Mapping[str, str] = {"ls": "long and short", "lo": "long only"}

HOLD_HELPER = '''

def hold_positions(long_entry, short_entry, long_exit, short_exit):
    """Stateful entries and exits: enter on an entry, stay until the matching exit."""
    enter_long = long_entry.fillna(False).to_numpy(dtype=bool)
    enter_short = short_entry.fillna(False).to_numpy(dtype=bool)
    leave_long = long_exit.fillna(False).to_numpy(dtype=bool)
    leave_short = short_exit.fillna(False).to_numpy(dtype=bool)
    positions = np.zeros(len(enter_long))
    current = 0.0
    for i in range(len(enter_long)):
        if enter_long[i]:
            current = 1.0
        elif enter_short[i]:
            current = -1.0
        elif current > 0.0 and leave_long[i]:
            current = 0.0
        elif current < 0.0 and leave_short[i]:
            current = 0.0
        positions[i] = current
    return pd.Series(positions, index=long_entry.index)
'''


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


def _fragment(block: Block) -> str:
    return textwrap.indent(textwrap.dedent(block.code).strip("\n"), INDENT)


def render_strategy(composition: Composition, name: str, rationale: str = "") -> str:
    """The complete strategy file for a composition, with the given name."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise StrategyError(f"strategy name {name!r} is not a snake_case identifier of at most {NAME_MAX} chars")
    comp = composition
    docstring = textwrap.fill(f"Generated by the offline designer from building blocks: {comp.describe()}.",
                              width=88)
    if rationale:
        docstring += "\n\n" + textwrap.fill(f"Rationale: {rationale}", width=88)
    docstring = docstring.replace('"""', "'''").replace("\\", "/")
    docstring = re.sub(r"__(\w+)__", r"\1", docstring)
    body = [
        "        p = self.params",
        '        open_ = candles["open"]',
        '        high = candles["high"]',
        '        low = candles["low"]',
        '        close = candles["close"]',
        '        volume = candles["volume"]',
        f"        # Signal: {comp.signal.description}",
        _fragment(comp.signal),
    ]
    if comp.filter is not None:
        body += [f"        # Filter: {comp.filter.description}", _fragment(comp.filter),
                 "        signal = signal.where(allow | signal.isna(), 0.0)"]
    if comp.direction == "lo":
        body.append("        signal = signal.clip(lower=0.0)")
    body += [
        "        return signal.fillna(0.0).clip(-1.0, 1.0)",
    ]
    params_text = _literal_for("params", _plain(dict(comp.params)), " " * 4)
    space_text = _literal_for("param_space", comp.param_space, " " * 4)
    lines = [
        f'"""{docstring}\n"""',
        "import numpy as np",
        "import pandas as pd",
        "",
        "from blofin_pipeline.strategies import Strategy",
    ]
    if comp.signal.uses_hold:
        lines.append(HOLD_HELPER.rstrip("\n"))
    lines += [
        "",
        "",
        f"class {_camel(name)}(Strategy):",
        f"    name = {name!r}",
        f"    category = {comp.category!r}",
        f"    params = {params_text}",
        f"    param_space = {space_text}",
        "",
        "    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:",
        *body,
        "",
    ]
    return "\n".join(lines)


# --- reading and rewriting literal class attributes --------------------------------

def code_hash(code: str) -> str:
    """sha256 hex digest of a strategy's source text (as the registry computes it)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def short_hash(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _strategy_class(tree: ast.Module, code_name: str) -> ast.ClassDef:
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if len(classes) != 1:
        raise StrategyError(f"strategy source {code_name}: expected one top-level class, found {len(classes)}")
    return classes[0]


def _attr_nodes(cls: ast.ClassDef) -> dict[str, ast.stmt]:
    found: dict[str, ast.stmt] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            found[stmt.targets[0].id] = stmt
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            found[stmt.target.id] = stmt
    return found


def read_class_literals(code: str, *names: str) -> dict[str, Any]:
    """Literal values of class attributes (e.g. "name", "params") without running the code.

    Attributes that are missing or not literals are left out.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise StrategyError(f"strategy source: syntax error at line {err.lineno}: {err.msg}") from err
    cls = _strategy_class(tree, "<code>")
    nodes = _attr_nodes(cls)
    out: dict[str, Any] = {}
    for attr in names:
        node = nodes.get(attr)
        if node is None:
            continue
        try:
            out[attr] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
        except ValueError:
            continue
    return out


def rewrite_class_attrs(code: str, values: Mapping[str, Any], *, owner: str = "<code>") -> str:
    """Replace literal class attributes (e.g. name, params) in a strategy file's source.

    Each attribute must already be assigned in the class body; its whole statement is
    replaced by `attr = <repr of the new value>`, everything else is kept byte for byte.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise StrategyError(f"strategy {owner!r}: syntax error at line {err.lineno}: {err.msg}") from err
    cls = _strategy_class(tree, repr(owner))
    nodes = _attr_nodes(cls)
    missing = [attr for attr in values if attr not in nodes]
    if missing:
        raise StrategyError(f"strategy {owner!r}: class attribute(s) {', '.join(missing)} not assigned "
                            "literally in the class body, cannot rewrite")
    lines = code.splitlines(keepends=True)
    # Replace from the bottom up so earlier line numbers stay valid.
    edits = sorted(((nodes[attr], value) for attr, value in values.items()),
                   key=lambda item: item[0].lineno, reverse=True)
    for node, value in edits:
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        target = node.targets[0].id if isinstance(node, ast.Assign) else node.target.id  # type: ignore[union-attr]
        rendered = repr(value) if not isinstance(value, Mapping) else _literal_for(target, value, indent)
        newline = "\n" if lines[end - 1].endswith("\n") else ""
        lines[start:end] = [f"{indent}{target} = {rendered}{newline}"]
    return "".join(lines)


def _literal_for(target: str, value: Mapping[str, Any], indent: str) -> str:
    text = pprint.pformat(_plain(dict(value)), width=88 - len(indent) - len(target) - 3, sort_dicts=False)
    return text.replace("\n", "\n" + indent + " " * (len(target) + 3))


def _plain(value: Any) -> Any:
    """numpy scalars to Python numbers so repr() stays a readable literal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


def merge_params(defaults: Mapping[str, Any], changes: Mapping[str, Any],
                 space: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Defaults updated with changes, ints kept int where the space is integer."""
    out = dict(defaults)
    for key, value in changes.items():
        bounds = space.get(key)
        if bounds is not None and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
            value = int(round(float(value)))
        out[key] = _plain(value)
    return out
