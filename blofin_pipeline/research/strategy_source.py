"""Read and rewrite a strategy file's literal class attributes without executing it.

The tuner writes tuned defaults and a new name into a copy of a file; the designer and
the research steps read `params` and `param_space` from code that has not been run yet.
Everything outside the rewritten statements is kept byte for byte.
"""
from __future__ import annotations

import ast
import math
import pprint
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from blofin_pipeline.exceptions import StrategyError


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
        rendered = repr(value) if not isinstance(value, Mapping) else literal_for(target, value, indent)
        newline = "\n" if lines[end - 1].endswith("\n") else ""
        lines[start:end] = [f"{indent}{target} = {rendered}{newline}"]
    return "".join(lines)


def literal_for(target: str, value: Mapping[str, Any], indent: str) -> str:
    """A dict literal for ``target = ...``, wrapped to 88 columns under `indent`."""
    text = pprint.pformat(plain(dict(value)), width=88 - len(indent) - len(target) - 3, sort_dicts=False)
    return text.replace("\n", "\n" + indent + " " * (len(target) + 3))


def plain(value: Any) -> Any:
    """numpy scalars to Python numbers (floats to 6 significant digits) so repr() stays a readable literal."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
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
        out[key] = plain(value)
    return out
