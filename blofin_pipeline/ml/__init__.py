"""ML pipeline: causal features with a shared market panel, banded direction labels,
walk-forward evaluation on the strategies' folds with every choice made on an inner
validation slice of a fold's training part (``ml.foldwise``), four model types,
soft-voting and stacking ensembles, versioned artefacts.

Pure functions over candles; the mapped DAG task ``train_ml_group`` calls
:func:`train_and_evaluate` for its symbols and persists their rows. scikit-learn and LightGBM are imported
lazily, so importing this package stays cheap.
"""
from __future__ import annotations

from blofin_pipeline.ml.config import MODEL_TYPES, MLConfig
from blofin_pipeline.ml.features import build_features
from blofin_pipeline.ml.inference import signals_from_artefact
from blofin_pipeline.ml.labels import make_labels
from blofin_pipeline.ml.pipeline import (
    ENSEMBLE_ROW_KEYS,
    MODEL_ROW_KEYS,
    MLResult,
    train_and_evaluate,
)

__all__ = [
    "ENSEMBLE_ROW_KEYS", "MODEL_ROW_KEYS", "MODEL_TYPES", "MLConfig", "MLResult",
    "build_features", "make_labels",
    "signals_from_artefact", "train_and_evaluate",
]
