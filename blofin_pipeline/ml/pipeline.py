"""Train, validate, ensemble and save the ML models of one symbol, fold by fold.

For every symbol (models named ``<model_type>_<symbol>``, e.g. ``lgbm_BTC-USDT``;
ensembles ``soft_voting_<symbol>``, ``stacking_<symbol>`` and ``best_ensemble_<symbol>``):

1. features (:mod:`.features`, with the market panel shared by all symbols) and direction
   labels with a no-trade band (:mod:`.labels`) on the candles given (the scoring window);
2. the strategies' walk-forward fold geometry over the same candles
   (``backtest.walkforward.fold_bounds`` with ``wf_folds``, ``train_frac``, ``anchored``);
   in each fold, :func:`.foldwise.fit_fold` fits the models on the fold's training part
   (purged by the label horizon) and chooses the ensemble members and the best ensemble on
   an inner validation slice of that training part only (the previous fold's test span, as
   far as it lies in this fold's training part, with the previous fold's predictions on it); the fitted models and ensembles predict
   the test fold;
3. the test-fold predictions, chained, are every reported figure: classification metrics
   on the labelled test bars (``n_test``) and the backtest of the positions (long when
   P(up) >= threshold, short when P(down) >= threshold, else flat) by the walk-forward's
   own code (each fold starts and ends flat), after fees;
4. one more fit of the same procedure on the last training span (the folds' length, ending
   at the last bar; its validation slice is the last test fold) gives the artefacts that
   trade from now on (:mod:`.artefacts`).

``best_ensemble`` is a procedure, not a fixed ensemble: per fold, the ensemble method its
inner validation chose. It is what the pipeline scores as a strategy.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import BacktestError, ModelError
from blofin_pipeline.ml.artefacts import data_hash, make_version, save_artefact
from blofin_pipeline.ml.config import MLConfig
from blofin_pipeline.ml.features import market_panel, symbol_features
from blofin_pipeline.ml.foldwise import (
    BEST_ENSEMBLE,
    ENSEMBLE_METHODS,
    FoldFit,
    Validation,
    fit_fold,
    inner_validation,
)
from blofin_pipeline.ml.inference import positions_from_proba
from blofin_pipeline.ml.labels import make_labels
from blofin_pipeline.ml.metrics import backtest_folds, classification_metrics
from blofin_pipeline.ml.models import model_params
from blofin_pipeline.ml.threads import native_threads

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
ITEM_KINDS = (*ENSEMBLE_METHODS, BEST_ENSEMBLE)


@dataclass
class MLResult:
    """Rows for ``ml_model_results`` / ``ml_ensembles`` plus what the rows leave out.

    ``fold_positions`` maps each model or ensemble name to its positions on each test fold
    (what :func:`blofin_pipeline.backtest.walkforward.chain_test_positions` scores);
    ``details`` maps each name to extra figures (drawdown, trades, the per-fold choices).
    """

    models: list[dict[str, Any]] = field(default_factory=list)
    ensembles: list[dict[str, Any]] = field(default_factory=list)
    fold_positions: dict[str, list[pd.Series]] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def extend(self, other: MLResult) -> None:
        self.models += other.models
        self.ensembles += other.ensembles
        self.fold_positions.update(other.fold_positions)
        self.details.update(other.details)


@dataclass
class SymbolData:
    symbol: str
    X: pd.DataFrame          # features on every bar of the candles (NaN in the warm-up)
    y: np.ndarray            # 1.0 up / 0.0 down / NaN no label
    candles: pd.DataFrame
    bounds: list[tuple[int, int, int, int]]   # the walk-forward folds, bar positions
    feature_symbols: tuple[str, ...]          # every symbol the market panel was built from

    def training_rows(self, start: int, stop: int, horizon: int) -> np.ndarray:
        """Usable labelled bars in [start, stop) whose label ends before ``stop``."""
        rows = np.arange(start, max(start, stop - horizon))
        usable = self.X.iloc[rows].notna().all(axis=1).to_numpy() & ~np.isnan(self.y[rows])
        return rows[usable]


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).isoformat()


def prepare_symbol(candles: pd.DataFrame, symbol: str, panel: pd.Series | None, feature_symbols: tuple[str, ...],
                   config: MLConfig) -> SymbolData:
    """Features, labels and the walk-forward folds of one symbol."""
    from blofin_pipeline.backtest.walkforward import fold_bounds

    try:
        bounds = fold_bounds(len(candles), config.wf_folds, config.train_len(len(candles)), config.anchored)
    except BacktestError as err:
        raise ModelError(f"symbol {symbol!r}: {err}") from err
    return SymbolData(symbol=symbol, X=symbol_features(candles, symbol, panel),
                      y=make_labels(candles["close"], config.horizon, config.band)["label"].to_numpy(),
                      candles=candles, bounds=bounds, feature_symbols=feature_symbols)


def _predict_span(fit: FoldFit, data: SymbolData, start: int, stop: int) -> dict[str, np.ndarray]:
    """P(up) of every model and ensemble on bars [start, stop) (NaN where features are unknown)."""
    X = data.X.iloc[start:stop]
    usable = X.notna().all(axis=1).to_numpy()
    out: dict[str, np.ndarray] = {}
    if usable.any():
        for name, p in fit.predict(X[usable]).items():
            out[name] = np.full(stop - start, np.nan)
            out[name][usable] = p
    return out


def _validation(data: SymbolData, rows: np.ndarray, previous: tuple[int, int, dict[str, np.ndarray]] | None,
                config: MLConfig, what: str) -> Validation | None:
    """A fold's inner validation: the previous test span (the part of it inside this fold's
    training ``rows``: a test fold may be longer than a rolling training window) with the
    previous models' P(up) on it; or (first fold) the last test-fold length of ``rows``, at
    most half of their span (the half before it fits the inner models), predicted by inner fits."""
    if len(config.models) < 2:
        return None
    if previous is None:
        span = min(data.bounds[0][3] - data.bounds[0][2], (int(rows[-1]) + 1 - int(rows[0])) // 2)
        return inner_validation(data.X, data.y, rows, int(rows[-1]) + 1 - span, config, what)
    start, stop, p_up = previous
    val = data.training_rows(start, stop, config.horizon)
    val = val[np.isin(val, rows)]
    return val, {m: p_up[m][val - start] for m in config.models}


def evaluate_folds(data: SymbolData, config: MLConfig) -> tuple[dict[str, list[np.ndarray]], list[FoldFit], FoldFit,
                                                               np.ndarray]:
    """Per model/ensemble kind, its test-fold P(up) per fold; each fold's fit; and the final
    fit (the same procedure on the last training span, for the artefacts) with its rows."""
    per_kind: dict[str, list[np.ndarray]] = {}
    fits, previous = [], None
    for k, (tr0, _, te0, te1) in enumerate(data.bounds):
        rows = data.training_rows(tr0, te0, config.horizon)
        what = f"ML {data.symbol} fold {k}"
        fit = fit_fold(data.X, data.y, rows, config, what, _validation(data, rows, previous, config, what))
        p_up = _predict_span(fit, data, te0, te1)
        for kind, p in p_up.items():
            per_kind.setdefault(kind, []).append(p)
        fits.append(fit)
        previous = (te0, te1, p_up)
        logger.info("ML %s fold %d: %d training rows, members %s, best ensemble %s", data.symbol, k, len(rows),
                    fit.members, fit.chosen)
    n = len(data.candles)
    rows = data.training_rows(0 if config.anchored else n - config.train_len(n), n, config.horizon)
    what = f"ML {data.symbol} final fit"
    final = fit_fold(data.X, data.y, rows, config, what, _validation(data, rows, previous, config, what))
    return per_kind, fits, final, rows


def _figures(name: str, data: SymbolData, fold_p: list[np.ndarray], config: MLConfig
             ) -> tuple[dict[str, Any], list[pd.Series]]:
    """Classification and backtest figures of the chained test folds; the folds' positions."""
    test = np.concatenate([np.arange(te0, te1) for _, _, te0, te1 in data.bounds])
    metrics = classification_metrics(data.y[test], np.concatenate(fold_p), name)
    positions = [pd.Series(positions_from_proba(p, config.threshold), index=data.candles.index[te0:te1], name=name)
                 for p, (_, _, te0, te1) in zip(fold_p, data.bounds, strict=True)]
    _, _, bt = backtest_folds(data.candles, positions, (config.fee, config.slippage, config.timeframe))
    metrics.update(backtest_sharpe=float(bt["sharpe"]), backtest_return=float(bt["total_return"]),
                   backtest_max_drawdown=float(bt["max_drawdown"]), backtest_n_trades=int(bt["n_trades"]),
                   test_start=_iso(data.candles.index[test[0]]), test_end=_iso(data.candles.index[test[-1]]))
    return metrics, positions


def _sidecar_common(data: SymbolData, config: MLConfig, rows: np.ndarray, hash_hex: str) -> dict[str, Any]:
    import lightgbm
    import sklearn

    return {
        "symbol": data.symbol, "features": list(data.X.columns),
        "train_start": _iso(data.X.index[rows[0]]), "train_end": _iso(data.X.index[rows[-1]]),
        "data_hash": hash_hex, "horizon": config.horizon, "band": config.band, "threshold": config.threshold,
        "fee": config.fee,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "library_versions": {"scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__},
    }


def _payload(estimator: Any, data: SymbolData, config: MLConfig, common: dict[str, Any], **extra: Any
             ) -> dict[str, Any]:
    return {"estimator": estimator, "features": list(data.X.columns), "symbol": data.symbol,
            "feature_symbols": list(data.feature_symbols), "horizon": config.horizon,
            "threshold": config.threshold, "train_end": common["train_end"], **extra}


def train_symbol(data: SymbolData, run_date: str, artefact_dir: Path, config: MLConfig) -> MLResult:
    """Every model and ensemble of one symbol: fold-wise figures, rows and artefacts."""
    symbol, result = data.symbol, MLResult()
    per_kind, fits, final, rows = evaluate_folds(data, config)
    hash_hex = data_hash(data.X.iloc[rows].assign(__label__=data.y[rows]))
    version = make_version(run_date, hash_hex)
    common = _sidecar_common(data, config, rows, hash_hex)
    where = (Path(artefact_dir), run_date, version)
    for model_type in config.models:
        name = f"{model_type}_{symbol}"
        metrics, positions = _figures(name, data, per_kind[model_type], config)
        params = model_params(model_type, config)
        path = _save(where, name, _payload(final.models[model_type], data, config, common, kind="model",
                                           model_type=model_type),
                     {**common, "kind": "model", "model_type": model_type, "params": params, "n_train": len(rows),
                      "metrics": metrics})
        result.models.append({
            "model_name": name, "model_type": model_type, "symbol": symbol, "version": version,
            "features": list(data.X.columns), "params": params, "train_start": common["train_start"],
            "train_end": common["train_end"], "test_start": metrics["test_start"], "test_end": metrics["test_end"],
            "data_hash": hash_hex, "n_train": len(rows), "n_test": metrics["n_test"],
            **{k: metrics[k] for k in METRIC_KEYS}, "up_share": metrics["up_share"], "artefact_path": str(path)})
        result.fold_positions[name], result.details[name] = positions, metrics
    if final.members:
        _ensembles(data, (per_kind, fits, final), common, where, config, result)
    return result


def _save(where: tuple[Path, str, str], name: str, payload: dict[str, Any], sidecar: dict[str, Any]) -> Path:
    artefact_dir, run_date, version = where
    return save_artefact(artefact_dir, run_date, name, version, payload, sidecar)


def _ensembles(data: SymbolData, fitted: tuple[dict[str, list[np.ndarray]], list[FoldFit], FoldFit],
               common: dict[str, Any], where: tuple[Path, str, str], config: MLConfig, result: MLResult) -> None:
    per_kind, fits, final = fitted
    members = [f"{m}_{data.symbol}" for m in final.members]
    estimators = final.ensembles()
    choices = [f.chosen for f in fits]
    for kind in ITEM_KINDS:
        name = f"{kind}_{data.symbol}"
        metrics, positions = _figures(name, data, per_kind[kind], config)
        method = final.chosen if kind == BEST_ENSEMBLE else kind
        extra = {"fold_choices": choices, "fold_members": [f.members for f in fits],
                 "fold_validation": [f.validation for f in fits]} if kind == BEST_ENSEMBLE else {}
        path = _save(where, name, _payload(estimators[kind], data, config, common, kind="ensemble", method=method,
                                           members=members),
                     {**common, "kind": "ensemble", "method": method, "members": members, "metrics": metrics,
                      "final_validation": final.validation, **extra})
        result.ensembles.append({
            "ensemble_name": name, "method": kind, "symbol": data.symbol, "version": where[2], "members": members,
            **{k: metrics[k] for k in METRIC_KEYS}, "up_share": metrics["up_share"], "artefact_path": str(path)})
        result.fold_positions[name], result.details[name] = positions, {**metrics, **extra}
        logger.info("ML %s: test f1=%.3f acc=%.3f sharpe=%.2f%s", name, metrics["f1"], metrics["accuracy"],
                    metrics["backtest_sharpe"], f" (fold choices {choices})" if extra else "")


def train_and_evaluate(candles_by_symbol: dict[str, pd.DataFrame], *, run_date: str, artefact_dir: Path,
                       config: MLConfig | None = None, panel: pd.Series | None = None,
                       feature_symbols: tuple[str, ...] | None = None) -> MLResult:
    """Train, validate fold-wise, ensemble and save every model of every symbol given.

    ``panel`` / ``feature_symbols``: the market panel and the symbols it was built from,
    when the caller trains a group of symbols with a panel shared across groups; by
    default both come from ``candles_by_symbol``. Returns the rows for ``ml_model_results``
    (keys ``MODEL_ROW_KEYS``) and ``ml_ensembles`` (keys ``ENSEMBLE_ROW_KEYS``).
    """
    config = config or MLConfig()
    if not candles_by_symbol:
        raise ModelError("train_and_evaluate: no candles given")
    symbols = list(config.symbols) if config.symbols is not None else sorted(candles_by_symbol)
    missing = [s for s in symbols if s not in candles_by_symbol]
    if missing:
        raise ModelError(f"train_and_evaluate: no candles for symbols {missing}")
    if feature_symbols is None:
        panel, feature_symbols = market_panel(candles_by_symbol), tuple(sorted(candles_by_symbol))
    result = MLResult()
    # OpenMP/BLAS threads (HistGradientBoosting, LightGBM, numpy) at n_jobs: on a shared
    # machine, oversubscribed OpenMP threads spin and slow everything down.
    with native_threads(config.n_jobs):
        for symbol in symbols:
            data = prepare_symbol(candles_by_symbol[symbol], symbol, panel, feature_symbols, config)
            result.extend(train_symbol(data, run_date, Path(artefact_dir), config))
    return result
