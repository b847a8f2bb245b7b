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
    mask = ~np.isnan(y) & np.isfinite(p_up)
    if not mask.any():
        raise ModelError(f"{name}: no labelled out-of-sample rows to score")
    truth = y[mask] == 1.0
    p = np.clip(p_up[mask], ens.PROBA_CLIP, 1.0 - ens.PROBA_CLIP)
    pred = p >= 0.5
    tp, n_pred, n_true = float(np.sum(pred & truth)), float(np.sum(pred)), float(np.sum(truth))
    # Plain arrays (scikit-learn's metrics cost ~50 ms a call in input checks; equal to 1e-12, tested)
    return {
        "f1": 2.0 * tp / (n_pred + n_true) if n_pred + n_true else 0.0,
        "accuracy": float(np.mean(pred == truth)),
        "precision": tp / n_pred if n_pred else 0.0,
        "recall": tp / n_true if n_true else 0.0,
        "roc_auc": _roc_auc(truth, p),
        "log_loss": float(-np.mean(np.where(truth, np.log(p), np.log1p(-p)))),
        "n_test": int(mask.sum()),
        "up_share": float(np.mean(truth)),
    }


def _roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic with tied scores at their mean
    rank; NaN when only one class is present."""
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    counts = np.diff(np.r_[starts, len(score)])
    mean_rank = np.repeat(starts + (counts + 1) / 2.0, counts)   # 1-based ranks, ties averaged
    ranks = np.empty(len(score))
    ranks[order] = mean_rank
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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
