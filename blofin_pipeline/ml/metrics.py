"""Figures of an ML model or ensemble: classification metrics of its P(up), the no-skill
baselines they must beat, and the backtest of its positions through the strategies' code."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import BacktestError, ModelError
from blofin_pipeline.ml import ensembles as ens


def classification_metrics(y: np.ndarray, p_up: np.ndarray, name: str = "model") -> dict[str, float]:
    """F1, accuracy, precision, recall, ROC AUC, log loss of P(up) on labelled rows, and the
    share of up labels among them (``up_share``: what a model without skill gets is read
    from it, :func:`no_skill_baselines`).

    Rows with no label or no prediction are skipped; predicted class = P(up) >= 0.5.
    ROC AUC is NaN when only one class is present.
    """
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    mask = ~np.isnan(y) & np.isfinite(p_up)
    if not mask.any():
        raise ModelError(f"{name}: no labelled out-of-sample rows to score")
    y_true = y[mask].astype(int)
    p = np.clip(p_up[mask], ens.PROBA_CLIP, 1.0 - ens.PROBA_CLIP)
    pred = (p >= 0.5).astype(int)
    both = len(np.unique(y_true)) == 2
    return {
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, p)) if both else float("nan"),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "n_test": int(mask.sum()),
        "up_share": float(y_true.mean()),
    }


def no_skill_baselines(up_share: float | None) -> dict[str, float | None]:
    """What a classifier without skill scores on labels with this share of ups: the
    accuracy of always predicting the majority class, max(p, 1 - p), and the F1 of always
    predicting up, 2p / (1 + p). A model's accuracy or F1 means something only above them."""
    if up_share is None or not 0.0 <= up_share <= 1.0:
        return {"majority_accuracy": None, "always_up_f1": None}
    p = float(up_share)
    return {"majority_accuracy": max(p, 1.0 - p), "always_up_f1": 2.0 * p / (1.0 + p)}


def backtest_folds(candles: pd.DataFrame, fold_positions: list[pd.Series], costs: tuple[float, float, str | None]
                   ) -> tuple[pd.Series, pd.Series, dict[str, Any]]:
    """Chained test-fold returns, equity and metrics, by the walk-forward's own code
    (``backtest.walkforward.chain_test_positions``), after fees and slippage."""
    from blofin_pipeline.backtest.walkforward import chain_test_positions

    fee, slippage, timeframe = costs
    try:
        return chain_test_positions(candles, fold_positions, fee=fee, slippage=slippage, timeframe=timeframe)
    except BacktestError as err:
        raise ModelError(f"backtest of ML positions {fold_positions[0].name!r} failed: {err}") from err
