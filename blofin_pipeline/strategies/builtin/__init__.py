"""The built-in strategy library: one file per strategy, each following the contract.

Built-ins import only what the static check allows, so they go through the same
checks as generated code. `builtin_strategy_sources()` gives the exact source text to
store (and hash) in the registry; `builtin_strategies()` the loaded classes.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies.base import Strategy, validate_strategy_class

_PACKAGE = __name__


@lru_cache(maxsize=1)
def _discover() -> tuple[tuple[str, type[Strategy], str], ...]:
    found: list[tuple[str, type[Strategy], str]] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_PACKAGE}.{info.name}")
        classes = [
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj is not Strategy
            and obj.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise StrategyError(
                f"built-in module {module.__name__!r} defines {len(classes)} strategies"
            )
        cls = validate_strategy_class(classes[0])
        source = Path(module.__file__).read_text(encoding="utf-8")
        found.append((cls.name, cls, source))
    names = [name for name, _, _ in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StrategyError(f"duplicate built-in strategy names: {', '.join(duplicates)}")
    return tuple(found)


def builtin_strategies() -> dict[str, type[Strategy]]:
    """name -> Strategy class for every built-in, sorted by file name."""
    return {name: cls for name, cls, _ in _discover()}


def builtin_strategy_sources() -> dict[str, str]:
    """name -> source code of each built-in file (what the registry stores and hashes)."""
    return {name: source for name, _, source in _discover()}
