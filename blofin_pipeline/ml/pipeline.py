"""Train, validate, ensemble and save the ML models: the ``train_ml_models`` step.

For every symbol (models are per symbol, named ``<model_type>_<symbol>``, e.g.
``lgbm_BTC-USDT``; ensembles ``soft_voting_<symbol>`` / ``stacking_<symbol>``):

1. features (:mod:`.features`) and direction labels with a no-trade band (:mod:`.labels`)
   on the most recent ``max_rows`` usable bars;
2. purged walk-forward (:mod:`.validation`): each model is refitted on every fold and
   predicts that fold's test block, giving out-of-sample (OOS) P(up) for every bar after
   the first block. All metrics come from these OOS predictions: classification metrics
   on the labelled OOS bars (``n_test``), and a backtest of the OOS signals (long when
   P(up) >= threshold, short when P(down) >= threshold, else flat) on every OOS bar,
   through :func:`blofin_pipeline.backtest.run_backtest` after fees;
3. ensembles over the best ``ensemble_size`` models of the symbol by OOS F1: soft
   voting (mean OOS P(up)) and stacking (meta-model fitted on earlier folds' OOS
   predictions only, so its OOS span starts one fold later);
4. each model is then refitted on all labelled bars (``n_train``; ``train_start`` ..
   ``train_end``) and saved with the ensembles as versioned artefacts (:mod:`.artefacts`).
   The refitted artefact is what trades from now on; ``test_start`` .. ``test_end`` is the
   OOS span the metrics were measured on, by models that never saw it.

Scoring an ML model or ensemble as a strategy: over the past, use
``MLResult.oos_positions[name]`` (walk-forward, honest); on bars after ``train_end``,
use :func:`signals_from_artefact`, which keeps the artefact flat on its training bars.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import BacktestError, ModelError
from blofin_pipeline.ml import ensembles as ens
from blofin_pipeline.ml.artefacts import (
    data_hash,
    make_version,
    save_artefact,
)
from blofin_pipeline.ml.config import MLConfig
from blofin_pipeline.ml.features import build_features
from blofin_pipeline.ml.inference import positions_from_proba
from blofin_pipeline.ml.labels import make_labels
from blofin_pipeline.ml.models import make_model, model_params
from blofin_pipeline.ml.validation import Fold, purged_walk_forward_splits

logger = logging.getLogger(__name__)

METRIC_KEYS = (
    "f1", "accuracy", "precision", "recall", "roc_auc", "log_loss", "backtest_sharpe", "backtest_return",
)
MODEL_ROW_KEYS = (
    "model_name", "model_type", "symbol", "version", "features", "params",
    "train_start", "train_end", "test_start", "test_end", "data_hash", "n_train", "n_test",
    *METRIC_KEYS, "up_share", "artefact_path",
)
ENSEMBLE_ROW_KEYS = ("ensemble_name", "method", "symbol", "version", "members", *METRIC_KEYS, "up_share",
                     "artefact_path")
ENSEMBLE_METHODS = ("soft_voting", "stacking")
MIN_TRAIN_ROWS = 100


@dataclass
class MLResult:
    """Rows for ``ml_model_results`` / ``ml_ensembles`` plus what the rows leave out.

    ``oos_positions`` maps each model or ensemble name to its out-of-sample positions
    (the honest way to score it as a strategy over the past); ``details`` maps each
    name to extra figures (backtest max_drawdown, n_trades, ...; also in the sidecars).
    """

    models: list[dict[str, Any]] = field(default_factory=list)
    ensembles: list[dict[str, Any]] = field(default_factory=list)
    oos_positions: dict[str, pd.Series] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _SymbolData:
    symbol: str
    X: pd.DataFrame          # usable rows (all features known), consecutive bars
    y: np.ndarray            # 1.0 up / 0.0 down / NaN no label
    candles: pd.DataFrame    # candles on the same rows
    folds: list[Fold]
    feature_symbols: tuple[str, ...]  # every symbol the features were built from

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.y)


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).isoformat()


def prepare_symbol(candles_by_symbol: dict[str, pd.DataFrame], symbol: str, config: MLConfig) -> _SymbolData:
    """Features, labels and purged folds of one symbol, on its last ``max_rows`` usable bars."""
    features = build_features(candles_by_symbol, symbol)
    candles = candles_by_symbol[symbol]
    labels = make_labels(candles["close"], config.horizon, config.band)
    # Rows dropped for unknown features only ever widen the bar gap between train and
    # test, so the row-based purge stays at least `horizon` bars.
    usable = features.notna().all(axis=1).to_numpy()
    rows = np.flatnonzero(usable)[-config.max_rows:]
    n_folds_min = (config.n_splits + 1) * (MIN_TRAIN_ROWS + config.horizon)
    if len(rows) < n_folds_min:
        raise ModelError(
            f"symbol {symbol!r}: {len(rows)} usable bars, need >= {n_folds_min} for"
            f" {config.n_splits} purged folds"
        )
    folds = purged_walk_forward_splits(len(rows), config.n_splits, config.horizon, min_train=MIN_TRAIN_ROWS)
    return _SymbolData(
        symbol=symbol,
        X=features.iloc[rows],
        y=labels["label"].to_numpy()[rows],
        candles=candles.iloc[rows],
        folds=folds,
        feature_symbols=tuple(sorted(candles_by_symbol)),
    )


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


def backtest_signals(candles: pd.DataFrame, positions: pd.Series, config: MLConfig) -> dict[str, float]:
    """Backtest positions through the shared backtester after fees and slippage."""
    from blofin_pipeline.backtest import run_backtest

    try:
        result = run_backtest(candles, positions, fee=config.fee, slippage=config.slippage, timeframe=config.timeframe)
    except BacktestError as err:
        raise ModelError(f"backtest of ML signals {positions.name!r} failed: {err}") from err
    metrics = result.metrics
    return {
        "backtest_sharpe": float(metrics["sharpe"]),
        "backtest_return": float(metrics["total_return"]),
        "backtest_max_drawdown": float(metrics["max_drawdown"]),
        "backtest_n_trades": int(metrics["n_trades"]),
        "backtest_exposure": float(metrics["exposure"]),
    }


def _fit(model_type: str, X: pd.DataFrame, y: np.ndarray, config: MLConfig, what: str) -> Any:
    classes = np.unique(y)
    if len(y) < MIN_TRAIN_ROWS or len(classes) < 2:
        raise ModelError(f"{what}: {len(y)} labelled training rows with classes {classes.tolist()}; need both classes")
    try:
        return make_model(model_type, config).fit(X, y.astype(int))
    except (ValueError, MemoryError) as err:
        raise ModelError(f"{what}: fitting failed: {err}") from err


def walk_forward_proba(model_type: str, data: _SymbolData, config: MLConfig) -> np.ndarray:
    """OOS P(up) per usable row of ``data`` (NaN before the first test block)."""
    p_up = np.full(len(data.X), np.nan)
    labelled = data.labelled
    for k, fold in enumerate(data.folds):
        train = fold.train[labelled[fold.train]]
        est = _fit(model_type, data.X.iloc[train], data.y[train], config, f"model {model_type}_{data.symbol} fold {k}")
        p_up[fold.test] = est.predict_proba(data.X.iloc[fold.test])[:, 1]
    return p_up


def _evaluate(name: str, data: _SymbolData, p_up: np.ndarray, config: MLConfig) -> tuple[dict[str, Any], pd.Series]:
    """Classification and backtest metrics of OOS P(up); also returns the OOS positions."""
    oos = np.flatnonzero(np.isfinite(p_up))
    if len(oos) == 0:
        raise ModelError(f"{name}: no out-of-sample predictions")
    metrics = classification_metrics(data.y, p_up, name)
    span = data.candles.iloc[oos[0]: oos[-1] + 1]
    positions = pd.Series(
        positions_from_proba(p_up[oos[0]: oos[-1] + 1], config.threshold), index=span.index, name=name
    )
    metrics.update(backtest_signals(span, positions, config))
    metrics["test_start"] = _iso(span.index[0])
    metrics["test_end"] = _iso(span.index[-1])
    return metrics, positions


def _sidecar_common(
    data: _SymbolData, config: MLConfig, train_index: pd.DatetimeIndex, hash_hex: str
) -> dict[str, Any]:
    import lightgbm
    import sklearn

    return {
        "symbol": data.symbol,
        "features": list(data.X.columns),
        "train_start": _iso(train_index[0]),
        "train_end": _iso(train_index[-1]),
        "data_hash": hash_hex,
        "horizon": config.horizon,
        "band": config.band,
        "threshold": config.threshold,
        "fee": config.fee,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "library_versions": {"scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__},
    }


def _payload(
    estimator: Any, data: _SymbolData, config: MLConfig, train_end: pd.Timestamp, **extra: Any
) -> dict[str, Any]:
    return {
        "estimator": estimator,
        "features": list(data.X.columns),
        "symbol": data.symbol,
        "feature_symbols": list(data.feature_symbols),
        "horizon": config.horizon,
        "threshold": config.threshold,
        "train_end": _iso(train_end),
        **extra,
    }


def _rank_key(row: dict[str, Any]) -> tuple[float, str]:
    f1 = row["f1"]
    return (-(f1 if np.isfinite(f1) else -np.inf), row["model_name"])


def _train_symbol(data: _SymbolData, run_date: str, artefact_dir: Path, config: MLConfig, result: MLResult) -> None:
    symbol = data.symbol
    labelled = np.flatnonzero(data.labelled)
    X_all, y_all = data.X.iloc[labelled], data.y[labelled]
    hash_hex = data_hash(X_all.assign(__label__=y_all))
    version = make_version(run_date, hash_hex)
    common = _sidecar_common(data, config, X_all.index, hash_hex)

    oos_by_model: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for model_type in config.models:
        name = f"{model_type}_{symbol}"
        logger.info("ML %s: purged walk-forward over %d folds", name, len(data.folds))
        p_up = walk_forward_proba(model_type, data, config)
        metrics, positions = _evaluate(name, data, p_up, config)
        estimator = _fit(model_type, X_all, y_all, config, f"model {name} (final refit)")
        params = model_params(model_type, config)
        path = save_artefact(
            artefact_dir, run_date, name, version,
            _payload(estimator, data, config, X_all.index[-1], kind="model", model_type=model_type),
            {**common, "kind": "model", "model_type": model_type, "params": params, "n_train": len(labelled),
             "test_start": metrics["test_start"], "test_end": metrics["test_end"], "metrics": metrics},
        )
        row = {
            "model_name": name, "model_type": model_type, "symbol": symbol, "version": version,
            "features": list(data.X.columns), "params": params,
            "train_start": common["train_start"], "train_end": common["train_end"],
            "test_start": metrics["test_start"], "test_end": metrics["test_end"],
            "data_hash": hash_hex, "n_train": len(labelled), "n_test": metrics["n_test"],
            **{k: metrics[k] for k in METRIC_KEYS}, "up_share": metrics["up_share"], "artefact_path": str(path),
        }
        rows.append(row)
        oos_by_model[name], fitted[name] = p_up, estimator
        result.oos_positions[name] = positions
        result.details[name] = metrics
        logger.info("ML %s: OOS f1=%.3f acc=%.3f auc=%.3f sharpe=%.2f", name, row["f1"], row["accuracy"],
                    row["roc_auc"], row["backtest_sharpe"])
    result.models.extend(rows)
    if len(rows) < 2:
        logger.info("ML %s: fewer than 2 models, no ensembles", symbol)
        return
    _train_ensembles(data, rows, oos_by_model, fitted, (run_date, artefact_dir, version, common), config, result)


def _train_ensembles(data: _SymbolData, rows: list[dict[str, Any]], oos_by_model: dict[str, np.ndarray],
                     fitted: dict[str, Any], where: tuple[str, Path, str, dict[str, Any]], config: MLConfig,
                     result: MLResult) -> None:
    """Soft-voting and stacking ensembles over the symbol's best models."""
    run_date, artefact_dir, version, common = where
    symbol = data.symbol
    X_all = data.X.iloc[np.flatnonzero(data.labelled)]
    members = [r["model_name"] for r in sorted(rows, key=_rank_key)[: config.ensemble_size]]
    member_oos = np.column_stack([oos_by_model[m] for m in members])
    member_est = {m: fitted[m] for m in members}
    for method in ENSEMBLE_METHODS:
        name = f"{method}_{symbol}"
        if method == "soft_voting":
            p_up = ens.soft_voting_oos(member_oos)
            estimator: Any = ens.SoftVotingEnsemble(member_est)
            params: dict[str, Any] = {"members": members, "weights": "equal", "combine": "mean P(up)"}
        else:
            p_up = ens.stacking_oos(member_oos, data.y, data.folds, config.horizon)
            known = np.flatnonzero(np.isfinite(member_oos).all(axis=1) & data.labelled)
            meta = ens.fit_meta(member_oos[known], data.y[known])
            estimator = ens.StackingEnsemble(member_est, meta)
            params = {"members": members, "meta_model": "logistic regression on member log-odds",
                      "meta_C": ens.META_C, "meta_rows": len(known),
                      "meta_coef": [float(c) for c in meta.coef_[0]], "meta_intercept": float(meta.intercept_[0])}
        metrics, positions = _evaluate(name, data, p_up, config)
        path = save_artefact(
            artefact_dir, run_date, name, version,
            _payload(estimator, data, config, X_all.index[-1], kind="ensemble", method=method, members=members),
            {**common, "kind": "ensemble", "method": method, "members": members, "params": params,
             "test_start": metrics["test_start"], "test_end": metrics["test_end"], "metrics": metrics},
        )
        result.ensembles.append({
            "ensemble_name": name, "method": method, "symbol": symbol, "version": version, "members": members,
            **{k: metrics[k] for k in METRIC_KEYS}, "up_share": metrics["up_share"], "artefact_path": str(path),
        })
        result.oos_positions[name] = positions
        result.details[name] = metrics
        logger.info("ML %s over %s: OOS f1=%.3f acc=%.3f", name, members, metrics["f1"], metrics["accuracy"])


def train_and_evaluate(
    candles_by_symbol: dict[str, pd.DataFrame],
    *,
    run_date: str,
    artefact_dir: Path,
    config: MLConfig | None = None,
) -> MLResult:
    """Train, validate (purged walk-forward), ensemble and save every model of every symbol.

    Returns the rows for ``ml_model_results`` (``MLResult.models``, keys
    ``MODEL_ROW_KEYS``) and ``ml_ensembles`` (``MLResult.ensembles``, keys
    ``ENSEMBLE_ROW_KEYS``); artefacts go under ``artefact_dir/run_date/``.
    """
    config = config or MLConfig()
    if not candles_by_symbol:
        raise ModelError("train_and_evaluate: no candles given")
    symbols = list(config.symbols) if config.symbols is not None else sorted(candles_by_symbol)
    missing = [s for s in symbols if s not in candles_by_symbol]
    if missing:
        raise ModelError(f"train_and_evaluate: no candles for symbols {missing}")
    from threadpoolctl import threadpool_limits

    result = MLResult()
    # Cap BLAS/OpenMP threads (HistGradientBoosting, numpy) at n_jobs: on a shared
    # machine, oversubscribed OpenMP threads spin and slow everything down.
    with threadpool_limits(limits=config.n_jobs):
        for symbol in symbols:
            data = prepare_symbol(candles_by_symbol, symbol, config)
            _train_symbol(data, run_date, Path(artefact_dir), config, result)
    return result
