"""Honest ML selection inside one walk-forward fold.

A fold's training part (labelled rows, purged so no label reaches the test fold) ends with
an inner validation slice, up to one test fold long: for every fold after the first it is
the previous fold's test span (the part of it inside this training part, when a test fold
is longer than the rolling training window), and the previous fold's models (fitted before
it, so they never saw it) supply the predictions on it; for the first fold (and whenever no
previous predictions are given) it is at most the second half of the training part, and
models fitted on the training part before the slice (purged by the label horizon) predict
it. The slice is cut into halves A and B:

1. ensemble members: the ``ensemble_size`` best models by F1 on half A;
2. the stacking meta-model for the choice is fitted on the members' predictions over A;
3. the best ensemble: soft voting or stacking, whichever is more accurate on half B
   (neither the members nor that meta-model saw B);
4. every model is fitted on the whole training part (this is what predicts the test fold),
   and the stacking meta-model on the members' predictions over the whole slice.

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


def _halves(val: np.ndarray, horizon: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validation halves A and B in time order, A purged so no label of A reaches into B."""
    if len(val) < MIN_VALIDATION_ROWS:
        raise ModelError(f"{what}: {len(val)} labelled validation rows, need >= {MIN_VALIDATION_ROWS} "
                         "(the previous test fold is the validation slice: fewer wf_folds or a longer span)")
    half_b = val[len(val) // 2:]
    half_a = val[: len(val) // 2]
    return half_a[half_a + horizon < half_b[0]], half_b


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    pred, truth = p >= 0.5, y == 1.0
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 2.0 * tp / denom if denom else 0.0


Validation = tuple[np.ndarray, dict[str, np.ndarray]]   # row positions, P(up) per model type on them


def inner_validation(X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, val_start: int, config: MLConfig,
                     what: str) -> Validation:
    """Predictions on the slice of ``rows`` from ``val_start`` on, by models fitted on the rows
    before it (purged by the horizon): the first fold's validation."""
    val = rows[rows >= val_start]
    inner = rows[rows + config.horizon < val_start]
    preds = {m: fit_model(m, X.iloc[inner], y[inner], config, f"{what} {m} (inner)").predict_proba(X.iloc[val])[:, 1]
             for m in config.models}
    return val, preds


def fit_fold(X: pd.DataFrame, y: np.ndarray, rows: np.ndarray, config: MLConfig, what: str,
             validation: Validation | None) -> FoldFit:
    """Fit on the training ``rows`` (labelled, usable, purged) of one fold and choose members
    and the best ensemble on ``validation`` (its slice of the training part and the P(up) of
    models that did not see it); None with a single model type (nothing to choose)."""
    full = {m: fit_model(m, X.iloc[rows], y[rows], config, f"{what} {m}") for m in config.models}
    if len(config.models) < 2:
        return FoldFit(models=full)
    val, val_p = validation
    if not np.isin(val, rows).all():
        raise ModelError(f"{what}: the validation slice is not part of the training part")
    half_a, half_b = _halves(val, config.horizon, what)
    in_a, in_b = np.isin(val, half_a), np.isin(val, half_b)
    f1 = {m: _f1(y[half_a], val_p[m][in_a]) for m in config.models}
    members = sorted(config.models, key=lambda m: (-f1[m], m))[: config.ensemble_size]
    member_val = np.column_stack([val_p[m] for m in members])
    meta_a = ens.fit_meta(member_val[in_a], y[half_a])
    on_b = {"soft_voting": ens.soft_voting_oos(member_val[in_b]),
            "stacking": meta_a.predict_proba(ens.logit(member_val[in_b]))[:, 1]}
    accuracy = {k: float(np.mean((p >= 0.5) == (y[half_b] == 1.0))) for k, p in on_b.items()}
    chosen = min(ENSEMBLE_METHODS, key=lambda k: (-accuracy[k], ENSEMBLE_METHODS.index(k)))
    return FoldFit(models=full, members=members, meta=ens.fit_meta(member_val, y[val]), chosen=chosen,
                   validation={**{f"f1_{m}": v for m, v in f1.items()},
                               **{f"accuracy_{k}": v for k, v in accuracy.items()}})
