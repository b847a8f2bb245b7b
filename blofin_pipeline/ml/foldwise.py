"""Honest ML selection inside one walk-forward fold.

A fold's training part (labelled rows, purged so no label reaches the test fold) is cut
in time into an inner-training part and an inner validation slice (``val_frac`` of it,
purged by the label horizon), the slice into halves A and B:

1. every model is fitted on the inner-training part and predicts the validation slice;
2. ensemble members: the ``ensemble_size`` best models by F1 on half A;
3. the stacking meta-model for the choice is fitted on the members' predictions over A;
4. the best ensemble: soft voting or stacking, whichever is more accurate on half B
   (neither the members nor that meta-model saw B);
5. every model is refitted on the whole training part (this is what predicts the test
   fold), and the stacking meta-model on the members' predictions over the whole slice.

Nothing here sees the test fold: what predicts it, and which ensemble is called the best,
is decided on the training part only. The test-fold predictions, chained over folds, are
the reported figures (``ml.pipeline``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import ModelError
from blofin_pipeline.ml import ensembles as ens
from blofin_pipeline.ml.config import MLConfig
from blofin_pipeline.ml.models import make_model

ENSEMBLE_METHODS = ("soft_voting", "stacking")
BEST_ENSEMBLE = "best_ensemble"
MIN_TRAIN_ROWS = 100
MIN_VALIDATION_ROWS = 2 * ens.MIN_META_ROWS


@dataclass
class FoldFit:
    """What one fold's training part decided: fitted models, members, meta-model, best ensemble."""

    models: dict[str, Any]                 # model type -> fitted on the whole training part
    members: list[str] = field(default_factory=list)   # model types, best by F1 on half A
    meta: Any = None                       # stacking meta-model over the members' log-odds
    chosen: str | None = None              # the best ensemble method (accuracy on half B)
    validation: dict[str, float] = field(default_factory=dict)  # the figures behind the choices

    def ensembles(self) -> dict[str, Any]:
        """Estimators of soft voting, stacking and the best ensemble ({} without members)."""
        if not self.members:
            return {}
        members = {m: self.models[m] for m in self.members}
        out = {"soft_voting": ens.SoftVotingEnsemble(members), "stacking": ens.StackingEnsemble(members, self.meta)}
        out[BEST_ENSEMBLE] = out[self.chosen]
        return out

    def predict(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """P(up) of every model type and ensemble on ``X``."""
        out = {m: est.predict_proba(X)[:, 1] for m, est in self.models.items()}
        if self.members:
            member_p = np.column_stack([out[m] for m in self.members])
            out["soft_voting"] = ens.soft_voting_oos(member_p)
            out["stacking"] = self.meta.predict_proba(ens.logit(member_p))[:, 1]
            out[BEST_ENSEMBLE] = out[self.chosen]
        return out


def fit_model(model_type: str, X: pd.DataFrame, y: np.ndarray, config: MLConfig, what: str) -> Any:
    classes = np.unique(y)
    if len(y) < MIN_TRAIN_ROWS or len(classes) < 2:
        raise ModelError(f"{what}: {len(y)} labelled training rows with classes {classes.tolist()}; need "
                         f">= {MIN_TRAIN_ROWS} of both classes")
    try:
        return make_model(model_type, config).fit(X, y.astype(int))
    except (ValueError, MemoryError) as err:
        raise ModelError(f"{what}: fitting failed: {err}") from err


def split_training(rows: np.ndarray, val_frac: float, horizon: int, what: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inner-training, validation half A, half B) row positions, in time order, each part
    purged so that no label of an earlier part reaches into a later one."""
    n_val = int(round(len(rows) * val_frac))
    val = rows[len(rows) - n_val:]
    if n_val < MIN_VALIDATION_ROWS:
        raise ModelError(f"{what}: {n_val} validation rows, need >= {MIN_VALIDATION_ROWS}")
    inner = rows[rows + horizon < val[0]]
    half_b = val[n_val // 2:]
    half_a = val[: n_val // 2]
    half_a = half_a[half_a + horizon < half_b[0]]
    return inner, half_a, half_b


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    pred, truth = p >= 0.5, y == 1.0
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 2.0 * tp / denom if denom else 0.0


def fit_fold(X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, config: MLConfig, what: str) -> FoldFit:
    """Fit and choose on the training ``rows`` (labelled, usable, purged) of one fold."""
    full = {m: fit_model(m, X.iloc[rows], y[rows], config, f"{what} {m}") for m in config.models}
    if len(config.models) < 2:
        return FoldFit(models=full)
    inner, half_a, half_b = split_training(rows, config.val_frac, config.horizon, what)
    val = np.concatenate([half_a, half_b])
    val_p = {}
    for m in config.models:
        est = fit_model(m, X.iloc[inner], y[inner], config, f"{what} {m} (inner)")
        val_p[m] = est.predict_proba(X.iloc[val])[:, 1]
    n_a = len(half_a)
    f1 = {m: _f1(y[half_a], val_p[m][:n_a]) for m in config.models}
    members = sorted(config.models, key=lambda m: (-f1[m], m))[: config.ensemble_size]
    member_val = np.column_stack([val_p[m] for m in members])
    meta_a = ens.fit_meta(member_val[:n_a], y[half_a])
    on_b = {"soft_voting": ens.soft_voting_oos(member_val[n_a:]),
            "stacking": meta_a.predict_proba(ens.logit(member_val[n_a:]))[:, 1]}
    accuracy = {k: float(np.mean((p >= 0.5) == (y[half_b] == 1.0))) for k, p in on_b.items()}
    chosen = min(ENSEMBLE_METHODS, key=lambda k: (-accuracy[k], ENSEMBLE_METHODS.index(k)))
    return FoldFit(models=full, members=members, meta=ens.fit_meta(member_val, y[val]), chosen=chosen,
                   validation={**{f"f1_{m}": v for m, v in f1.items()},
                               **{f"accuracy_{k}": v for k, v in accuracy.items()}})
