"""One reconciliation step between an LLM reply and the registry: name, category, params.

A reply names its strategy (a design also its category); the file it hands in declares its
own class attributes. The registry keys on the name and `backtest_candidates` reads the
file, so both must agree, or a sound file is rejected ("declares name ..., registered as
..."). The reply's fields win, since they were checked against the call's tool schema:
the file's `name` and `category` are rewritten to them, and `params` to the given values
(a tuning) or to the file's own defaults clipped into their `param_space` bounds. Every
rewrite is returned with its reason and logged; the rest of the file is kept byte for byte.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.research.strategy_source import (
    read_class_literals,
    rewrite_class_attrs,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciled:
    """The file as it will be registered, with what was rewritten and why."""

    code: str
    params: dict[str, Any]
    param_space: dict[str, Any]
    changes: list[str] = field(default_factory=list)


def clip_to_space(params: Mapping[str, Any], space: Mapping[str, Any]) -> dict[str, Any]:
    """Numeric defaults clipped into their (low, high) bounds; others unchanged."""
    out = dict(params)
    for key, value in params.items():
        bounds = space.get(key)
        numeric = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = sorted(bounds)
            clipped = min(max(value, lo), hi)
            out[key] = int(round(clipped)) if isinstance(lo, int) and isinstance(hi, int) else clipped
    return out


def _differences(literals: Mapping[str, Any], name: str, category: str | None,
                 params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    changes: list[str] = []
    if literals.get("name") != name:
        values["name"] = name
        changes.append(f"class attribute name {literals.get('name')!r} rewritten to {name!r}, the reply's name")
    if category is not None and literals.get("category") != category:
        values["category"] = category
        changes.append(f"class attribute category {literals.get('category')!r} rewritten to {category!r}, "
                       "the reply's category")
    if dict(literals.get("params") or {}) != dict(params):
        values["params"] = dict(params)
        changes.append(f"params {literals.get('params')!r} rewritten to {dict(params)!r}")
    return values, changes


def reconcile(code: str, *, name: str, category: str | None = None, params: Mapping[str, Any] | None = None,
              owner: str | None = None) -> Reconciled:
    """The file with its class attributes set to the reply's `name`, `category` and `params`
    (default: its own defaults, clipped into `param_space`).

    Raises StrategyError when the file does not parse or an attribute to rewrite is not a
    literal assignment in the class body.
    """
    owner = owner or name
    literals = read_class_literals(code, "name", "category", "params", "param_space")
    space = literals.get("param_space") if isinstance(literals.get("param_space"), dict) else {}
    own = literals.get("params") if isinstance(literals.get("params"), dict) else {}
    wanted = clip_to_space(own if params is None else params, space)
    values, changes = _differences(literals, name, category, wanted)
    if values:
        try:
            code = rewrite_class_attrs(code, values, owner=owner)
        except StrategyError as err:
            raise StrategyError(f"strategy {owner!r}: cannot reconcile with the reply ({'; '.join(changes)}): "
                                f"{err}") from err
    for change in changes:
        logger.info("reconcile %s: %s", owner, change)
    return Reconciled(code, wanted, dict(space), changes)
