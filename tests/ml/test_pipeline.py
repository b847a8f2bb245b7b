"""End-to-end checks of train_and_evaluate: row keys, artefacts, signals, and honesty.

Honesty noise band: with n labelled test-fold bars and no skill, accuracy has a
standard deviation of SIGMA = 0.5 / sqrt(n) (about 0.009 for the ~3,300 test bars here).
No edge: every model and ensemble must stay within 4 SIGMA of 0.5 (a leak typically
shows as accuracy far above that). Planted lag-1 autocorrelation of 0.2 (momentum or
mean reversion): every model and ensemble must beat 0.5 + 2 SIGMA (a forest fitted on one
rolling training part of ~3,000 rows is the weakest) and their mean must beat 0.5 + 5 SIGMA (the sign rule's accuracy is 0.5 + arcsin(0.2)/pi ~ 0.564, ~9 SIGMA).
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import ConfigError, ModelError
from blofin_pipeline.market.sample import Edge
from blofin_pipeline.ml import (
    ENSEMBLE_ROW_KEYS,
    MODEL_ROW_KEYS,
    MLConfig,
    signals_from_artefact,
    train_and_evaluate,
)
from blofin_pipeline.ml.artefacts import data_hash, load_artefact
from blofin_pipeline.ml.inference import positions_from_proba
from blofin_pipeline.ml.pipeline import prepare_symbol

from .conftest import FAST_CONFIG, RUN_DATE, make_market

HONESTY_BARS = 8000
EXPECTED_MODEL_KEYS = {
    "model_name", "model_type", "symbol", "version", "features", "params", "train_start", "train_end",
    "test_start", "test_end", "data_hash", "n_train", "n_test", "f1", "accuracy", "precision", "recall",
    "roc_auc", "log_loss", "backtest_sharpe", "backtest_return", "up_share", "artefact_path",
}
EXPECTED_ENSEMBLE_KEYS = {
    "ensemble_name", "method", "symbol", "version", "members", "f1", "accuracy", "precision", "recall",
    "roc_auc", "log_loss", "backtest_sharpe", "backtest_return", "up_share", "artefact_path",
}


@pytest.fixture(scope="module")
def no_edge(tmp_path_factory):
    market = make_market(HONESTY_BARS, seed=0)
    artefacts = tmp_path_factory.mktemp("artefacts_no_edge")
    return market, artefacts, train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=artefacts, config=FAST_CONFIG)


@pytest.fixture(scope="module", params=["momentum", "mean_reversion"])
def edged(request, tmp_path_factory):
    market = make_market(HONESTY_BARS, seed=0, edge=Edge(request.param, 0.2))
    artefacts = tmp_path_factory.mktemp(f"artefacts_{request.param}")
    return market, artefacts, train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=artefacts, config=FAST_CONFIG)


def _data(market):
    from blofin_pipeline.ml.features import market_panel

    return prepare_symbol(market["BTC-USDT"], "BTC-USDT", market_panel(market), tuple(sorted(market)), FAST_CONFIG)


def _all_rows(result):
    return [(r.get("model_name") or r["ensemble_name"], r) for r in result.models + result.ensembles]


def _sigma(row_n_test: int) -> float:
    return 0.5 / math.sqrt(row_n_test)


# --- honesty ---------------------------------------------------------------------

def test_no_edge_accuracy_stays_within_noise(no_edge):
    _, _, result = no_edge
    n_test = result.models[0]["n_test"]
    assert n_test > 3000
    for name, row in _all_rows(result):
        assert abs(row["accuracy"] - 0.5) < 4 * _sigma(n_test), f"{name}: accuracy {row['accuracy']:.4f}"
        assert 0.45 < row["roc_auc"] < 0.55, name


def test_a_leak_would_break_the_noise_band(tmp_path, monkeypatch):
    """The no-edge check is a real alarm: one feature peeking one bar ahead blows it."""
    from blofin_pipeline.ml import pipeline

    honest = pipeline.symbol_features

    def leaky(candles, symbol, panel):
        features = honest(candles, symbol, panel)
        features["peek"] = np.log(candles["close"].shift(-1) / candles["close"])
        return features

    monkeypatch.setattr(pipeline, "symbol_features", leaky)
    config = replace(FAST_CONFIG, models=("logreg", "lgbm"))
    result = train_and_evaluate(make_market(3000, seed=0), run_date=RUN_DATE, artefact_dir=tmp_path, config=config)
    for name, row in _all_rows(result):
        assert row["accuracy"] - 0.5 > 4 * _sigma(result.models[0]["n_test"]), name


def test_planted_edge_is_found(edged):
    _, _, result = edged
    n_test = result.models[0]["n_test"]
    rows = _all_rows(result)
    for name, row in rows:
        assert row["accuracy"] > 0.5 + 2 * _sigma(n_test), f"{name}: accuracy {row['accuracy']:.4f}"
        assert row["roc_auc"] > 0.53, name
    assert np.mean([row["accuracy"] for _, row in rows]) > 0.5 + 5 * _sigma(n_test)


def test_edge_makes_money_where_noise_does_not(no_edge, edged):
    """Soft voting after fees: the planted edge beats the no-edge market."""
    by_name = {name: row for name, row in _all_rows(edged[2])}
    noise = {name: row for name, row in _all_rows(no_edge[2])}
    key = "soft_voting_BTC-USDT"
    assert by_name[key]["backtest_return"] > noise[key]["backtest_return"]


# --- rows ------------------------------------------------------------------------

def test_rows_have_exactly_the_table_columns(no_edge):
    _, _, result = no_edge
    assert set(MODEL_ROW_KEYS) == EXPECTED_MODEL_KEYS and set(ENSEMBLE_ROW_KEYS) == EXPECTED_ENSEMBLE_KEYS
    assert [r["model_name"] for r in result.models] == [
        "logreg_BTC-USDT", "extra_trees_BTC-USDT", "hist_gb_BTC-USDT", "lgbm_BTC-USDT",
    ]
    assert [(r["ensemble_name"], r["method"]) for r in result.ensembles] == [
        ("soft_voting_BTC-USDT", "soft_voting"), ("stacking_BTC-USDT", "stacking"),
        ("best_ensemble_BTC-USDT", "best_ensemble"),
    ]
    for row in result.models:
        assert set(row) == EXPECTED_MODEL_KEYS
        json.dumps(row)  # persistable as is (NaN aside, which json allows by default)
    for row in result.ensembles:
        assert set(row) == EXPECTED_ENSEMBLE_KEYS
        json.dumps(row)


def test_row_values_are_consistent(no_edge):
    market, _, result = no_edge
    data = _data(market)
    n = len(data.candles)
    rows = data.training_rows(n - int(n * FAST_CONFIG.train_frac), n, FAST_CONFIG.horizon)
    expected_hash = data_hash(data.X.iloc[rows].assign(__label__=data.y[rows]))
    for row in result.models:
        assert row["symbol"] == "BTC-USDT"
        assert row["data_hash"] == expected_hash
        assert row["version"] == f"{RUN_DATE}-{expected_hash[:10]}"
        assert row["features"] == list(data.X.columns) and len(row["features"]) >= 20
        assert row["n_train"] == len(rows)
        assert pd.Timestamp(row["test_start"]) == data.X.index[data.bounds[0][2]]
        assert pd.Timestamp(row["test_end"]) == data.X.index[-1]
        assert pd.Timestamp(row["train_start"]) <= pd.Timestamp(row["test_start"])
        for key in ("f1", "accuracy", "precision", "recall", "roc_auc"):
            assert 0.0 <= row[key] <= 1.0, key
        assert row["log_loss"] > 0
    # The artefacts' members: the three best models by F1 on the final fit's validation half A,
    # not by any test-fold figure.
    for ens in result.ensembles:
        validation = json.loads(Path(ens["artefact_path"]).with_suffix(".json").read_text())["final_validation"]
        best = sorted(FAST_CONFIG.models, key=lambda m: (-validation[f"f1_{m}"], m))[:3]
        assert ens["members"] == [f"{m}_BTC-USDT" for m in best]
        assert ens["version"] == result.models[0]["version"]


def test_fold_positions_and_backtest_match_the_rows(no_edge):
    """Each test fold is backtested flat at both ends and the folds compound, exactly as a
    strategy's walk-forward; the folds are the strategies' test windows."""
    from blofin_pipeline.backtest import run_backtest
    from blofin_pipeline.backtest.walkforward import fold_bounds

    market, _, result = no_edge
    candles = market["BTC-USDT"]
    bounds = fold_bounds(len(candles), FAST_CONFIG.wf_folds, FAST_CONFIG.train_len(len(candles)), False)
    for name, row in _all_rows(result):
        folds = result.fold_positions[name]
        assert [(f.index[0], f.index[-1]) for f in folds] == [
            (candles.index[te0], candles.index[te1 - 1]) for _, _, te0, te1 in bounds]
        growth = 1.0
        for positions in folds:
            assert set(np.unique(positions)) <= {-1.0, 0.0, 1.0}
            closed = positions.copy()
            closed.iloc[-1] = 0.0
            bt = run_backtest(candles.loc[positions.index], closed, fee=FAST_CONFIG.fee, timeframe="1H")
            growth *= 1.0 + bt.metrics["total_return"]
        assert growth - 1.0 == pytest.approx(row["backtest_return"])
    # The best ensemble trades, fold by fold, the ensemble its inner validation chose.
    choices = result.details["best_ensemble_BTC-USDT"]["fold_choices"]
    for k, chosen in enumerate(choices):
        pd.testing.assert_series_equal(result.fold_positions["best_ensemble_BTC-USDT"][k],
                                       result.fold_positions[f"{chosen}_BTC-USDT"][k], check_names=False)


# --- artefacts -------------------------------------------------------------------

def test_artefacts_round_trip_with_sidecar(no_edge):
    market, artefacts, result = no_edge
    data = _data(market)
    for name, row in _all_rows(result):
        path = Path(row["artefact_path"])
        assert path.parent == artefacts / RUN_DATE
        assert path.name == f"{name}__{row['version']}.joblib"
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["name"] == name and sidecar["version"] == row["version"]
        assert sidecar["features"] == list(data.X.columns)
        assert sidecar["data_hash"] == result.models[0]["data_hash"]
        assert sidecar["train_start"] == result.models[0]["train_start"]
        assert sidecar["train_end"] == result.models[0]["train_end"]
        assert sidecar["metrics"]["accuracy"] == pytest.approx(row["accuracy"])
        assert "backtest_max_drawdown" in sidecar["metrics"] and "backtest_n_trades" in sidecar["metrics"]
        payload = load_artefact(path)
        if "model_name" in row:
            assert sidecar["params"] == row["params"]
        else:
            assert sidecar["members"] == row["members"] == payload["members"]
            if payload["method"] == "stacking":
                assert payload["estimator"].meta.coef_.shape == (1, len(row["members"]))
        proba = payload["estimator"].predict_proba(data.X.iloc[-200:])
        assert proba.shape == (200, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        # A second load gives the very same model.
        np.testing.assert_array_equal(load_artefact(path)["estimator"].predict_proba(data.X.iloc[-200:]), proba)


def test_loading_a_foreign_file_is_a_model_error(tmp_path):
    bogus = tmp_path / "bogus.joblib"
    joblib.dump({"something": 1}, bogus)
    with pytest.raises(ModelError, match="bogus.joblib"):
        load_artefact(bogus)
    with pytest.raises(ModelError, match="missing.joblib"):
        load_artefact(tmp_path / "missing.joblib")


# --- signals from an artefact ----------------------------------------------------

def test_signals_from_artefact_are_flat_in_sample_and_trade_after(no_edge):
    market, _, result = no_edge
    path = next(r["artefact_path"] for r in result.ensembles if r["method"] == "soft_voting")
    train_end = pd.Timestamp(result.models[0]["train_end"])
    later = make_market(HONESTY_BARS + 600, seed=0)
    signals = signals_from_artefact(path, later, "BTC-USDT")
    assert signals.index.equals(later["BTC-USDT"].index)
    assert (signals[signals.index <= train_end] == 0).all()
    after = signals[signals.index > train_end]
    assert len(after) >= 600 and (after != 0).any()
    assert signals.between(-1, 1).all()
    # Causal end to end: the signals on the old bars do not change when new bars arrive.
    old = signals_from_artefact(path, market, "BTC-USDT", include_in_sample=True)
    new = signals_from_artefact(path, later, "BTC-USDT", include_in_sample=True)
    pd.testing.assert_series_equal(new.loc[old.index], old)


def test_signals_from_artefact_follow_the_threshold(no_edge):
    market, _, result = no_edge
    path = result.models[0]["artefact_path"]
    payload = load_artefact(path)
    X = _data(market).X.dropna()
    p_up = payload["estimator"].predict_proba(X)[:, 1]
    signals = signals_from_artefact(path, market, "BTC-USDT", include_in_sample=True)
    np.testing.assert_array_equal(signals.loc[X.index].to_numpy(), positions_from_proba(p_up, 0.55))


def test_signals_from_artefact_refuse_another_symbol(no_edge):
    market, _, result = no_edge
    with pytest.raises(ModelError, match="ETH-USDT"):
        signals_from_artefact(result.models[0]["artefact_path"], market, "ETH-USDT")
    with pytest.raises(ModelError, match="SOL-USDT"):
        signals_from_artefact(result.models[0]["artefact_path"],
                              {"BTC-USDT": market["BTC-USDT"], "ETH-USDT": market["ETH-USDT"]}, "BTC-USDT")


def test_signals_from_artefact_ignore_extra_symbols(no_edge):
    market, _, result = no_edge
    path = result.models[0]["artefact_path"]
    extra = {**market, "XRP-USDT": make_market(HONESTY_BARS, seed=9)["SOL-USDT"]}
    pd.testing.assert_series_equal(
        signals_from_artefact(path, extra, "BTC-USDT", include_in_sample=True),
        signals_from_artefact(path, market, "BTC-USDT", include_in_sample=True),
    )


# --- small pieces ----------------------------------------------------------------

def test_positions_from_proba():
    p = np.array([0.9, 0.55, 0.54, 0.5, 0.46, 0.45, 0.1, np.nan])
    np.testing.assert_array_equal(positions_from_proba(p, 0.55), [1, 1, 0, 0, 0, -1, -1, 0])
    np.testing.assert_array_equal(positions_from_proba(p[:7], 0.5), [1, 1, 1, 1, -1, -1, -1])


def test_runs_are_deterministic(tmp_path):
    market = make_market(2500, seed=5)
    config = replace(FAST_CONFIG, models=("logreg", "lgbm", "extra_trees"), wf_folds=3)
    first = train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=tmp_path / "a", config=config)
    second = train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=tmp_path / "b", config=config)

    def strip(rows):
        # Compared as JSON text so that NaN (a flat model has no Sharpe) equals NaN.
        return json.dumps([{k: v for k, v in r.items() if k != "artefact_path"} for r in rows])

    assert strip(first.models) == strip(second.models)
    assert strip(first.ensembles) == strip(second.ensembles)


def test_single_model_gives_no_ensembles_and_bad_input_is_named(tmp_path):
    market = make_market(2500, seed=5)
    config = replace(FAST_CONFIG, models=("logreg",), wf_folds=3)
    result = train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=tmp_path, config=config)
    assert len(result.models) == 1 and result.ensembles == []
    with pytest.raises(ModelError, match="DOGE-USDT"):
        train_and_evaluate(market, run_date=RUN_DATE, artefact_dir=tmp_path,
                           config=replace(config, symbols=("DOGE-USDT",)))
    short = {s: c.iloc[:400] for s, c in market.items()}
    with pytest.raises(ModelError, match="BTC-USDT.*training rows"):
        train_and_evaluate(short, run_date=RUN_DATE, artefact_dir=tmp_path, config=config)


@pytest.mark.parametrize("changes", [
    {"models": ("svm",)}, {"threshold": 0.4}, {"wf_folds": 0}, {"train_frac": 1.0}, {"horizon": 0},
    {"band": -0.001},
])
def test_config_rejects_bad_values(changes):
    with pytest.raises(ConfigError):
        MLConfig(**changes)


def test_no_skill_baselines_from_the_share_of_ups():
    """Beside a model's accuracy and F1, what no skill scores on the same labels."""
    import numpy as np

    from blofin_pipeline.ml.metrics import classification_metrics, no_skill_baselines

    assert no_skill_baselines(0.6) == pytest.approx({"majority_accuracy": 0.6, "always_up_f1": 0.75})
    assert no_skill_baselines(0.3) == pytest.approx({"majority_accuracy": 0.7, "always_up_f1": 0.6 / 1.3})
    assert no_skill_baselines(None) == {"majority_accuracy": None, "always_up_f1": None}
    y = np.array([1, 1, 1, 0, np.nan])
    always_up = classification_metrics(y, np.full(5, 0.9))
    assert always_up["up_share"] == pytest.approx(0.75)
    assert always_up["f1"] == pytest.approx(no_skill_baselines(0.75)["always_up_f1"])
    assert always_up["accuracy"] == pytest.approx(no_skill_baselines(0.75)["majority_accuracy"])


def test_artefacts_written_by_joblib_before_still_load(tmp_path):
    """Artefacts are now plain pickles; the joblib files of earlier runs load the same way."""
    import joblib

    from blofin_pipeline.ml.artefacts import ARTEFACT_FORMAT, save_artefact

    payload = {"estimator": {"w": np.arange(3.0)}, "symbol": "BTC-USDT"}
    old = tmp_path / "old.joblib"
    joblib.dump({"format": ARTEFACT_FORMAT, **payload}, old)
    new = save_artefact(tmp_path, "2026-11-30", "m", "v1", payload, {"kind": "model"})
    for path in (old, new):
        back = load_artefact(path)
        assert back["symbol"] == "BTC-USDT" and back["format"] == ARTEFACT_FORMAT
        np.testing.assert_array_equal(back["estimator"]["w"], np.arange(3.0))
