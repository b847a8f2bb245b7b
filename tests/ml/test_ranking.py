from __future__ import annotations

import math

import pytest

from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.ml.ranking import rank_ml_results


def _model(name, f1, accuracy=0.5):
    return {"model_name": name, "f1": f1, "accuracy": accuracy}


def _ensemble(name, accuracy, f1=0.5):
    return {"ensemble_name": name, "accuracy": accuracy, "f1": f1}


def test_keeps_top_models_by_f1_and_ensembles_by_accuracy():
    models = [_model(f"m{i}", f1) for i, f1 in enumerate([0.50, 0.62, 0.55, 0.70, 0.41, 0.58, 0.66])]
    ensembles = [_ensemble("e1", 0.52, f1=0.9), _ensemble("e2", 0.56), _ensemble("e3", 0.51),
                 _ensemble("e4", 0.54)]
    ranking = rank_ml_results(models, ensembles)
    assert [m["model_name"] for m in ranking.kept_models] == ["m3", "m6", "m1", "m5", "m2"]
    assert [m["rank"] for m in ranking.kept_models] == [1, 2, 3, 4, 5]
    assert [m["model_name"] for m in ranking.archived_models] == ["m0", "m4"]
    assert ranking.archived_models[0]["reason"] == "rank 6 by out-of-sample f1 (0.5000), outside the top 5"
    # Ensembles go by accuracy: e1's high F1 does not save it.
    assert [e["ensemble_name"] for e in ranking.kept_ensembles] == ["e2", "e4", "e1"]
    assert [e["ensemble_name"] for e in ranking.archived_ensembles] == ["e3"]
    assert "accuracy" in ranking.archived_ensembles[0]["reason"]
    assert "reason" not in models[0]  # the input rows are left alone


def test_nan_ranks_last_ties_break_on_the_other_metric_then_name():
    models = [_model("b", 0.6, 0.51), _model("a", 0.6, 0.51), _model("c", math.nan), _model("d", 0.6, 0.55)]
    ranking = rank_ml_results(models, [], keep_models=2)
    assert [m["model_name"] for m in ranking.kept_models] == ["d", "a"]
    assert [m["model_name"] for m in ranking.archived_models] == ["b", "c"]
    assert ranking.archived_models[1]["reason"] == "model has no out-of-sample f1"


def test_keep_counts_are_configurable_and_checked():
    models = [_model(f"m{i}", 0.5 + i / 100) for i in range(4)]
    assert len(rank_ml_results(models, [], keep_models=0).archived_models) == 4
    assert len(rank_ml_results(models, [], keep_models=10).kept_models) == 4
    with pytest.raises(ConfigError):
        rank_ml_results(models, [], keep_models=-1)
