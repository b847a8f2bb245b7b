"""The four model types, built from explicit hyperparameters with fixed seeds.

Heavy imports (scikit-learn, LightGBM) happen inside the functions, so importing the
library (and parsing the DAG) stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blofin_pipeline.exceptions import ConfigError

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

    from blofin_pipeline.ml.config import MLConfig


def model_params(model_type: str, config: MLConfig) -> dict[str, Any]:
    """The hyperparameters of ``model_type`` under ``config`` (JSON-serialisable).

    Regularised on purpose: market data are mostly noise, so shallow trees, large
    leaves and a strong L2 penalty beat flexible fits out of sample. Classes are
    weighted to balance: the models should learn direction, not the training window's
    share of up moves (a drift that flips between regimes and does not carry over).
    HistGradientBoosting is the exception: with sample weights its binning switches to
    weighted percentiles, which is many times slower; its L2 penalty and large leaves
    keep the base-rate pull small.
    """
    seed = config.seed
    if model_type == "logreg":
        return {"C": 0.1, "max_iter": 1000, "class_weight": "balanced", "scaler": "standard"}
    if model_type == "extra_trees":
        return {
            "n_estimators": config.tree_estimators, "max_depth": 8, "min_samples_leaf": 100,
            "max_features": 0.3, "bootstrap": True, "max_samples": 0.2,
            "class_weight": "balanced", "n_jobs": config.n_jobs, "random_state": seed,
        }
    if model_type == "hist_gb":
        return {
            "max_iter": config.boost_rounds, "learning_rate": config.learning_rate, "max_leaf_nodes": 15,
            "min_samples_leaf": 100, "l2_regularization": 1.0, "early_stopping": False,
            "random_state": seed,
        }
    if model_type == "lgbm":
        return {
            "n_estimators": config.boost_rounds, "learning_rate": config.learning_rate, "num_leaves": 15,
            "min_child_samples": 100, "subsample": 0.8, "subsample_freq": 1,
            "colsample_bytree": 0.8, "reg_lambda": 1.0, "class_weight": "balanced", "n_jobs": config.n_jobs,
            "random_state": seed, "deterministic": True, "force_row_wise": True, "verbose": -1,
        }
    raise ConfigError(f"unknown model type {model_type!r}")


def make_model(model_type: str, config: MLConfig) -> ClassifierMixin:
    """An unfitted binary classifier of ``model_type`` with ``predict_proba``."""
    params = model_params(model_type, config)
    if model_type == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=params["C"], max_iter=params["max_iter"], class_weight=params["class_weight"]),
        )
    if model_type == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(**params)
    if model_type == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(**params)
    if model_type == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**params)
    raise ConfigError(f"unknown model type {model_type!r}")
