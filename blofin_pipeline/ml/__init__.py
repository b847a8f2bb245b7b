"""ML pipeline: causal features, banded direction labels, walk-forward validation
with the strategies' folds (choices on an inner validation slice), four model types, soft-voting and stacking ensembles, versioned artefacts.

Pure functions over candles; the DAG task ``train_ml_models`` calls
:func:`train_and_evaluate` and persists its rows. scikit-learn and LightGBM are imported
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
