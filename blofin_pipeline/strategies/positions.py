"""Positions of a registered strategy version on new candles: the one door the forward record
and the day's signals go through to run a strategy's code.

Every version here has passed its checks (built-ins ship with the package; others became
active only through `backtest_candidates`). Code that is not built in belongs in the kernel
sandbox once its entry point lands; until then it runs through ``record.load()``, as
scoring does, and switching is a change to :func:`_strategy_class` alone.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from blofin_pipeline.strategies.base import Strategy, load_strategy_source
from blofin_pipeline.strategies.registry import StrategyRecord


@lru_cache(maxsize=64)
def _strategy_class(code: str, ref: str) -> type[Strategy]:
    return load_strategy_source(code, origin=ref)


def positions_for(record: StrategyRecord, candles: pd.DataFrame, params: Mapping[str, Any] | None = None
                  ) -> pd.Series:
    """Target positions in [-1, 1] on the candles' bars, validated (warm-up flat), with
    ``params`` over the version's defaults."""
    strategy = _strategy_class(record.code, record.ref)(dict(params or {}))
    return Strategy.signals(strategy, candles)  # the base method, even if the class overrides it


def last_fold_params(params_json: Any) -> dict[str, Any]:
    """The parameters a walk-forward result chose on its last fold (``[{fold, params}, ...]``),
    the ones a strategy trades with after that backtest; {} when there are none."""
    folds = json.loads(params_json) if isinstance(params_json, str) else params_json
    if not isinstance(folds, list) or not folds:
        return {}
    last = max((f for f in folds if isinstance(f, dict)), key=lambda f: f.get("fold", 0), default={})
    chosen = last.get("params")
    return dict(chosen) if isinstance(chosen, dict) else {}
