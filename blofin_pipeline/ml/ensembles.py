"""Soft voting and stacking over fitted member models.

Soft voting averages the members' P(up). Stacking feeds the members' log-odds to a
logistic regression (the meta-model); the meta-model is fitted only on the members'
predictions of members that did not train on those rows (a fold's inner validation
slice, ``ml.foldwise``), never on in-sample ones.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from blofin_pipeline.exceptions import ModelError

if TYPE_CHECKING:
    import pandas as pd

PROBA_CLIP = 1e-6
META_C = 1.0
MIN_META_ROWS = 30


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBA_CLIP, 1.0 - PROBA_CLIP)
    return np.log(p / (1.0 - p))


def _make_meta() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=META_C, max_iter=1000)


def _two_columns(p_up: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p_up, p_up])


class SoftVotingEnsemble:
    """Mean of the members' P(up); ``predict_proba`` like a scikit-learn classifier."""

    classes_ = np.array([0.0, 1.0])

    def __init__(self, members: dict[str, Any]) -> None:
        self.members = dict(members)

    def member_probas(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.column_stack([m.predict_proba(X)[:, 1] for m in self.members.values()])

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _two_columns(self.member_probas(X).mean(axis=1))


class StackingEnsemble(SoftVotingEnsemble):
    """Logistic regression on the members' log-odds (``meta`` already fitted)."""

    def __init__(self, members: dict[str, Any], meta: Any) -> None:
        super().__init__(members)
        self.meta = meta

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _two_columns(self.meta.predict_proba(logit(self.member_probas(X)))[:, 1])


def fit_meta(member_probas: np.ndarray, y: np.ndarray) -> Any:
    """Fit the stacking meta-model on out-of-sample member probabilities."""
    if len(np.unique(y)) < 2 or len(y) < MIN_META_ROWS:
        raise ModelError(f"stacking meta-model needs >= {MIN_META_ROWS} rows of both classes, got {len(y)}")
    return _make_meta().fit(logit(member_probas), y)


def soft_voting_oos(member_oos: np.ndarray) -> np.ndarray:
    """Out-of-sample ensemble P(up): the mean of the members' out-of-sample P(up)."""
    return member_oos.mean(axis=1)
