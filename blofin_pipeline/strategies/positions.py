"""Positions of a registered strategy version on new candles: the one door the forward record
and the day's signals go through to run a strategy's code.

Every version here has passed its checks (built-ins ship with the package; others became
active only through `backtest_candidates`). Code that is not built in belongs in the kernel
sandbox once its entry point lands (`strategies.runner.signal_function`, same call
signature); until then it runs in-process through the strategy contract, as scoring does,
and the switch is the one line in :func:`_signal_function`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from blofin_pipeline.strategies.base import load_strategy_source, signal_fn
from blofin_pipeline.strategies.registry import StrategyRecord


@lru_cache(maxsize=64)
def _signal_function(code: str, origin: str) -> Callable[[pd.DataFrame, dict], pd.Series]:
    return signal_fn(load_strategy_source(code, origin=origin))


def positions_for(record: StrategyRecord, candles: pd.DataFrame, params: Mapping[str, Any] | None = None
                  ) -> pd.Series:
    """Target positions in [-1, 1] on the candles' bars, validated (warm-up flat), with
    ``params`` over the version's defaults."""
    return _signal_function(record.code, record.ref)(candles, dict(params or {}))


def last_fold_params(params_json: Any) -> dict[str, Any]:
    """The parameters a walk-forward result chose on its last fold (``[{fold, params}, ...]``),
    the ones a strategy trades with after that backtest; {} when there are none."""
    folds = json.loads(params_json) if isinstance(params_json, str) else params_json
    if not isinstance(folds, list) or not folds:
        return {}
    last = max((f for f in folds if isinstance(f, dict)), key=lambda f: f.get("fold", 0), default={})
    chosen = last.get("params")
    return dict(chosen) if isinstance(chosen, dict) else {}
