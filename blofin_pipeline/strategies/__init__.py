"""Strategies: the contract, the built-in library and the checks for untrusted code.

Strategy files need only ``from blofin_pipeline.strategies import Strategy``. Keep this
module's imports light: it is imported by every strategy, also in the sandbox child.
"""
from __future__ import annotations

from blofin_pipeline.strategies.base import (
    CATEGORIES,
    NAME_MAX,
    Strategy,
    code_hash,
    load_strategy_file,
    load_strategy_source,
    signal_fn,
    validate_signals,
    validate_strategy_class,
)

__all__ = [
    "CATEGORIES", "NAME_MAX", "Strategy", "code_hash", "load_strategy_file", "load_strategy_source",
    "signal_fn", "validate_signals", "validate_strategy_class",
    "builtin_strategies", "builtin_strategy_sources", "check_strategy",
    "check_strategy_file", "run_in_sandbox", "static_check", "check_lookahead",
    "signal_function", "signal_function_for", "SandboxLimits",
]


def __getattr__(name: str):  # lazy: the checks pull in subprocess machinery
    if name in ("builtin_strategies", "builtin_strategy_sources"):
        from blofin_pipeline.strategies import builtin
        return getattr(builtin, name)
    if name in ("check_strategy", "check_strategy_file"):
        from blofin_pipeline.strategies import checks
        return getattr(checks, name)
    if name == "SandboxLimits":
        from blofin_pipeline.strategies.sandbox import SandboxLimits
        return SandboxLimits
    if name in ("signal_function", "signal_function_for", "run_in_sandbox"):
        from blofin_pipeline.strategies import runner
        return getattr(runner, name)
    if name == "static_check":
        from blofin_pipeline.strategies.safety import static_check
        return static_check
    if name == "check_lookahead":
        from blofin_pipeline.strategies.lookahead import check_lookahead
        return check_lookahead
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
