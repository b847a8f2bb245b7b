"""What a saved model or ensemble says: positions from its probabilities, on new candles."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import ModelError
from blofin_pipeline.ml.artefacts import load_artefact
from blofin_pipeline.ml.features import build_features
from blofin_pipeline.ml.threads import native_threads


def positions_from_proba(p_up: np.ndarray, threshold: float) -> np.ndarray:
    """+1 where P(up) >= threshold, -1 where P(down) = 1 - P(up) >= threshold, else 0 (NaN -> 0)."""
    p = np.asarray(p_up, dtype=np.float64)
    pos = np.zeros(len(p))
    pos[p >= threshold] = 1.0
    # P(down) compared directly, so 0.45 is short at threshold 0.55 (1 - 0.55 < 0.45 in floats).
    pos[(1.0 - p >= threshold) & (pos == 0)] = -1.0
    return pos


def signals_from_artefact(
    artefact_path: Path | str,
    candles_by_symbol: dict[str, pd.DataFrame],
    symbol: str,
    *,
    include_in_sample: bool = False,
    since: pd.Timestamp | None = None,
) -> pd.Series:
    """Positions in [-1, 1] on ``symbol``'s bars from a saved model or ensemble.

    Uses the artefact's own features list, symbol set and threshold (other symbols in
    ``candles_by_symbol`` are ignored). Bars where a feature is unknown
    (warm-up) are flat. Bars the artefact was trained on (up to ``train_end`` plus
    ``horizon - 1`` bars, whose trade return its labels saw) are flat too unless
    ``include_in_sample``: scoring a model on its own training data would flatter it.
    With ``since``, only the bars from that time on are predicted and returned (the
    features still see the whole history).
    """
    payload = load_artefact(artefact_path)
    if payload["symbol"] != symbol:
        raise ModelError(f"ML artefact {str(artefact_path)!r} was trained for {payload['symbol']!r}, not {symbol!r}")
    # The cross-symbol features (market average) depend on the symbol set: use exactly
    # the symbols the artefact was trained with.
    wanted = payload["feature_symbols"]
    absent = [s for s in wanted if s not in candles_by_symbol]
    if absent:
        raise ModelError(f"ML artefact {str(artefact_path)!r} needs candles of {absent} for its features")
    features = build_features({s: candles_by_symbol[s] for s in wanted}, symbol)
    missing = [c for c in payload["features"] if c not in features.columns]
    if missing:
        raise ModelError(f"ML artefact {str(artefact_path)!r}: candles give no features {missing}")
    first = 0 if since is None else int(features.index.searchsorted(pd.Timestamp(since)))
    X = features[payload["features"]].iloc[first:]
    usable = X.notna().all(axis=1).to_numpy()
    p_up = np.full(len(X), np.nan)
    if usable.any():
        with native_threads(1):  # a few thousand rows: threads would only spin
            p_up[usable] = payload["estimator"].predict_proba(X[usable])[:, 1]
    positions = positions_from_proba(p_up, payload["threshold"])
    if not include_in_sample:
        in_sample = np.flatnonzero(features.index <= pd.Timestamp(payload["train_end"]))
        if len(in_sample):
            positions[: max(in_sample[-1] + payload["horizon"] - first, 0)] = 0.0
    return pd.Series(positions, index=X.index, name=f"ml:{Path(artefact_path).stem}")


def bar_by_bar_signal(artefact_path: Path | str, candles_by_symbol: Mapping[str, pd.DataFrame], symbol: str
                      ) -> Callable[[pd.DataFrame], pd.Series]:
    """fn(prefix) -> the artefact's position at the prefix's last bar (other bars flat), every
    symbol's candles cut there: for deciding one bar at a time with data up to its close only.
    Only that bar is predicted; the features see the whole prefix."""
    def signal(prefix: pd.DataFrame) -> pd.Series:
        end = prefix.index[-1]
        cut = {s: frame.loc[:end] for s, frame in candles_by_symbol.items()}
        return signals_from_artefact(artefact_path, cut, symbol, since=end).reindex(prefix.index, fill_value=0.0)

    return signal
