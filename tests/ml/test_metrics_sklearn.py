"""The ML classification metrics equal scikit-learn's, on inputs made here."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score

from blofin_pipeline.ml import ensembles as ens
from blofin_pipeline.ml.metrics import classification_metrics


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = 700
    y = (rng.random(n) < [0.5, 0.3, 0.8, 0.5, 0.5, 0.5][seed]).astype(float)
    p = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    if seed == 3:
        p = np.round(p, 1)        # many tied scores
    if seed == 4:
        p[:50] = 0.0              # clipped to PROBA_CLIP
        p[50:100] = 1.0
    y[rng.random(n) < 0.1] = np.nan   # unlabelled bars are skipped
    p[rng.random(n) < 0.05] = np.nan  # and bars without a prediction
    got = classification_metrics(y, p)
    mask = ~np.isnan(y) & np.isfinite(p)
    yt, pc = y[mask].astype(int), np.clip(p[mask], ens.PROBA_CLIP, 1 - ens.PROBA_CLIP)
    pred = (pc >= 0.5).astype(int)
    want = {"f1": f1_score(yt, pred, zero_division=0), "accuracy": accuracy_score(yt, pred),
            "precision": precision_score(yt, pred, zero_division=0), "recall": recall_score(yt, pred, zero_division=0),
            "roc_auc": roc_auc_score(yt, pc), "log_loss": log_loss(yt, pc, labels=[0, 1])}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert got["n_test"] == int(mask.sum()) and got["up_share"] == pytest.approx(yt.mean())


def test_one_class_and_no_positive_prediction():
    y = np.zeros(50)
    got = classification_metrics(y, np.full(50, 0.2))
    assert np.isnan(got["roc_auc"]) and got["f1"] == got["precision"] == got["recall"] == 0.0
    assert got["accuracy"] == 1.0
    assert got["log_loss"] == pytest.approx(log_loss(y.astype(int), np.full(50, 0.2), labels=[0, 1]), rel=1e-12)
