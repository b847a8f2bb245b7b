"""Positions of a registered strategy version on new candles: the one door the forward record
and the day's signals go through to run a strategy's code.

Every version here has passed its checks (built-ins ship with the package; others became
active only through `backtest_candidates`). As everywhere, code that is not a shipped
built-in runs only in the kernel sandbox (`strategies.runner.signal_function`); the open
signal functions are cached so a strategy's child serves every bar of a run.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from blofin_pipeline.strategies.registry import StrategyRecord
from blofin_pipeline.strategies.runner import signal_function


@lru_cache(maxsize=64)
def _signal_function(code: str, origin: str, label: str) -> Callable[[pd.DataFrame, dict], pd.Series]:
    return signal_function(code, origin=origin, label=label)


def positions_for(record: StrategyRecord, candles: pd.DataFrame, params: Mapping[str, Any] | None = None
                  ) -> pd.Series:
    """Target positions in [-1, 1] on the candles' bars, validated (warm-up flat), with
    ``params`` over the version's defaults."""
    return _signal_function(record.code, record.origin, record.ref)(candles, dict(params or {}))


def last_fold_params(params_json: Any) -> dict[str, Any]:
    """The parameters a walk-forward result chose on its last fold (``[{fold, params}, ...]``),
    the ones a strategy trades with after that backtest; {} when there are none."""
    folds = json.loads(params_json) if isinstance(params_json, str) else params_json
    if not isinstance(folds, list) or not folds:
        return {}
    last = max((f for f in folds if isinstance(f, dict)), key=lambda f: f.get("fold", 0), default={})
    chosen = last.get("params")
    return dict(chosen) if isinstance(chosen, dict) else {}
