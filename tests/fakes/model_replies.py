"""What the fake model answers when nothing is scripted: a plausible model, or schema-valid
random values.

- `plausible_payload`: design, tune and review requests (recognised by the tool asked for,
  or by the JSON schema of `output_config`) get sensible content, e.g. strategy files that
  follow the contract, so a whole DAG run can go "online".
- `SchemaFaker` (`schema_values`) answers whatever tool schema it is sent with random
  values the schema allows, nothing hand-picked.

`pick_tool` chooses the tool a request wants: the forced one (`tool_choice` type tool),
else the one the last user message names, else the first.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any


def pick_tool(request: dict[str, Any]) -> dict[str, Any] | None:
    """The tool a request asks the model to call, or None (no tools, or tool_choice none)."""
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    choice = request.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), tools[0])
    text = _last_user_text(request)
    named = [(text.find(t["name"]), t) for t in tools if t["name"] in text]
    return min(named, key=lambda item: item[0])[1] if named else tools[0]


def reply_schema(request: dict[str, Any], tool: dict[str, Any] | None) -> dict[str, Any]:
    """The schema the answer must follow: the tool's input schema, or `output_config`'s."""
    if tool is not None:
        return tool.get("input_schema") or {}
    return ((request.get("output_config") or {}).get("format") or {}).get("schema") or {}


def plausible_payload(request: dict[str, Any], tool: dict[str, Any] | None, serial: int) -> dict[str, Any]:
    """A plausible answer to a design, tune or review request (else a summary)."""
    kind = _reply_kind(tool["name"] if tool else "", reply_schema(request, tool))
    user_text = _last_user_text(request)
    if kind == "design":
        return _design_payload(user_text, request, serial)
    if kind == "tune":
        return _tune_payload(user_text)
    if kind == "review":
        return _review_payload(user_text)
    return {"summary": "Fake summary: the pipeline ran, strategies were scored and ranked."}


def _design_payload(user_text: str, request: dict[str, Any], serial: int) -> dict[str, Any]:
    match = re.search(r"design (\d+) new strateg", user_text, flags=re.IGNORECASE)
    n = int(match.group(1)) if match else 3
    # Names depend on the prompt (and a serial), so another day's context, or a
    # restarted server, proposes new names instead of ones already tried.
    digest = hashlib.sha256(json.dumps([serial, request.get("system"), request.get("messages")],
                                       sort_keys=True).encode()).hexdigest()[:6]
    strategies = []
    for k in range(n):
        template = STRATEGY_TEMPLATES[k % len(STRATEGY_TEMPLATES)]
        name = f"llm_{template['slug']}_{digest}_{k + 1}"
        code = template["code"].format(cls=_class_name(name), name=name)
        strategies.append({"name": name, "category": template["category"],
                           "rationale": template["rationale"], "code": code})
    return {"strategies": strategies}


def _reply_kind(tool: str, schema: dict[str, Any]) -> str:
    props = set((schema or {}).get("properties", {}))
    if tool == "submit_strategies" or "strategies" in props:
        return "design"
    if tool == "submit_tuning" or "proposals" in props:
        return "tune"
    if tool == "submit_review" or "recommendations" in props:
        return "review"
    return "summary"


def _last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        if texts and not any("rejected by the validator" in t for t in texts):
            return "\n".join(texts)
    first = (request.get("messages") or [{}])[0].get("content", "")
    return first if isinstance(first, str) else json.dumps(first)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _tune_payload(user_text: str) -> dict[str, Any]:
    """One proposal per `## name (category)` section: every parameter moved to mid-range."""
    proposals = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^## ([a-z][a-z0-9_]*) \(", user_text, flags=re.MULTILINE):
        brace = user_text.find("{", match.end())
        facts: dict[str, Any] = {}
        if brace != -1:
            try:
                facts, _ = decoder.raw_decode(user_text, brace)
            except json.JSONDecodeError:
                facts = {}
        params: dict[str, Any] = {}
        for param, space in (facts.get("param_space") or {}).items():
            if isinstance(space, list) and len(space) == 2 and all(isinstance(b, (int, float)) for b in space):
                lo, hi = space
                mid = (lo + hi) / 2
                params[param] = int(round(mid)) if isinstance(lo, int) and isinstance(hi, int) else round(mid, 6)
        proposals.append({
            "strategy": match.group(1),
            "params": params,
            "rationale": "Mid-range parameters trade less often, which cuts fee drag.",
            "diagnosis": "Overtrading with fee drag and drawdowns clustered in ranging markets.",
        })
    if not proposals:
        proposals.append({"strategy": "unknown_strategy", "params": {}, "rationale": "n/a", "diagnosis": "n/a"})
    return {"proposals": proposals}


def _review_payload(user_text: str) -> dict[str, Any]:
    names = sorted(set(re.findall(r'"(?:name|strategy)": "([a-z][a-z0-9_]*)"', user_text)))[:3]
    subject = ", ".join(names) if names else "the active strategies"
    return {
        "summary": f"Fake review: {subject} were scored; trend strategies led while ranging symbols lagged.",
        "working": [f"{subject} kept positive out-of-sample Sharpe"],
        "not_working": ["Mean-reversion entries lose money in strong trends"],
        "risks": ["Few trades per walk-forward fold make the Sharpe estimates noisy"],
        "recommendations": ["Add a volatility filter to the mean-reversion family"],
    }


STRATEGY_TEMPLATES: list[dict[str, str]] = [
    {
        "slug": "ema_trend",
        "category": "trend",
        "rationale": "Trend-following with a volatility-scaled EMA spread fills the trend gap in "
                     "trending, high-volatility symbols.",
        "code": '''\
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "trend"
    params = {{"fast": 10, "slow": 40}}
    param_space = {{"fast": (3, 30), "slow": (20, 120)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        fast = close.ewm(span=int(self.params["fast"]), adjust=False).mean()
        slow = close.ewm(span=int(self.params["slow"]), adjust=False).mean()
        signal = pd.Series(np.sign(fast - slow), index=candles.index)
        warm = int(self.params["slow"])
        signal.iloc[:warm] = 0.0
        return signal.fillna(0.0).clip(-1.0, 1.0)
''',
    },
    {
        "slug": "zscore_revert",
        "category": "mean_reversion",
        "rationale": "A rolling z-score fade covers ranging regimes where the portfolio has no "
                     "mean-reversion strategy.",
        "code": '''\
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "mean_reversion"
    params = {{"window": 30, "entry": 1.5}}
    param_space = {{"window": (10, 100), "entry": (0.5, 3.0)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        window = int(self.params["window"])
        mean = close.rolling(window).mean()
        std = close.rolling(window).std()
        z = (close - mean) / std.replace(0.0, np.nan)
        entry = float(self.params["entry"])
        signal = pd.Series(0.0, index=candles.index)
        signal[z > entry] = -1.0
        signal[z < -entry] = 1.0
        return signal.fillna(0.0)
''',
    },
    {
        "slug": "donchian_break",
        "category": "breakout",
        "rationale": "Donchian channel breakouts catch regime changes out of ranges, a breakout "
                     "gap in the current coverage.",
        "code": '''\
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "breakout"
    params = {{"lookback": 20}}
    param_space = {{"lookback": (5, 100)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        lookback = int(self.params["lookback"])
        upper = candles["high"].rolling(lookback).max().shift(1)
        lower = candles["low"].rolling(lookback).min().shift(1)
        close = candles["close"]
        raw = pd.Series(float("nan"), index=candles.index)
        raw[close > upper] = 1.0
        raw[close < lower] = -1.0
        return raw.ffill().fillna(0.0)
''',
    },
]


