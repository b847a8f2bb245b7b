"""The fold-wise ML protocol: every choice is made on the fold's training part only."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from blofin_pipeline.exceptions import ModelError
from blofin_pipeline.ml.features import market_panel
from blofin_pipeline.ml.foldwise import fit_fold
from blofin_pipeline.ml.pipeline import evaluate_folds, prepare_symbol

from .conftest import FAST_CONFIG, make_market

CONFIG = replace(FAST_CONFIG, models=("logreg", "lgbm", "extra_trees"), ensemble_size=2)


def _data(market):
    return prepare_symbol(market["BTC-USDT"], "BTC-USDT", market_panel(market), tuple(sorted(market)), CONFIG)


def test_choices_do_not_depend_on_the_test_fold():
    """Scramble every bar from the last test fold on: the choices made for that fold (members,
    best ensemble, the validation figures behind them) and all earlier test predictions stay
    the same. Under the old protocol (members and the best ensemble chosen on the whole
    out-of-sample span) they would change."""
    market = make_market(3000, seed=4)
    data = _data(market)
    last = data.bounds[-1][2]
    rng = np.random.default_rng(1)
    scrambled = dict(market)
    frame = market["BTC-USDT"].copy()
    factor = np.exp(np.cumsum(rng.normal(0, 0.02, len(frame) - last)))
    for col in ("open", "high", "low", "close"):
        frame.iloc[last:, frame.columns.get_loc(col)] *= factor
    scrambled["BTC-USDT"] = frame
    per_kind, fits, _, _ = evaluate_folds(data, CONFIG)
    per_kind2, fits2, _, _ = evaluate_folds(_data(scrambled), CONFIG)
    for a, b in zip(fits, fits2, strict=True):
        assert (a.members, a.chosen, a.validation) == (b.members, b.chosen, b.validation)
    for kind, folds in per_kind.items():
        for k in range(len(folds) - 1):
            np.testing.assert_array_equal(folds[k], per_kind2[kind][k])
    assert not np.array_equal(per_kind["lgbm"][-1], per_kind2["lgbm"][-1])  # the scramble did reach the test fold


def test_a_validation_slice_outside_the_training_part_is_refused():
    data = _data(make_market(3000, seed=4))
    tr0, _, te0, te1 = data.bounds[0]
    rows = data.training_rows(tr0, te0, CONFIG.horizon)
    test_rows = data.training_rows(te0, te1, CONFIG.horizon)
    fake = {m: np.full(len(test_rows), 0.5) for m in CONFIG.models}
    with pytest.raises(ModelError, match="not part of the training part"):
        fit_fold(data.X, data.y, rows, CONFIG, "fold 0", (test_rows, fake))


def test_test_folds_longer_than_the_rolling_window_validate_inside_it():
    """A long stored history in few folds makes a test fold longer than the rolling training
    window (2 folds of ~1,150 bars after 700): fold 1 chooses on the part of fold 0's test
    span inside its own training part, so bars of that span before its window (scrambled
    here) change fold 0's predictions but none of fold 1's choices. (This geometry raised a
    ModelError before: the whole previous span was not part of the training part.)"""
    config = replace(CONFIG, wf_folds=2, train_bars=700)
    market = make_market(3000, seed=4)

    def prepare(m):
        return prepare_symbol(m["BTC-USDT"], "BTC-USDT", market_panel(m), tuple(sorted(m)), config)

    data = prepare(market)
    (_, _, te0, te1), (tr1, _, _, _) = data.bounds
    assert te1 - te0 > 700 and tr1 - te0 > 300
    scrambled = dict(market)
    frame = market["BTC-USDT"].copy()
    noise = np.exp(np.random.default_rng(2).normal(0, 0.01, tr1 - 200 - te0))
    for col in ("open", "high", "low", "close"):
        frame.iloc[te0: tr1 - 200, frame.columns.get_loc(col)] *= noise
    scrambled["BTC-USDT"] = frame
    per_kind, fits, final, _ = evaluate_folds(data, config)
    per_kind2, fits2, _, _ = evaluate_folds(prepare(scrambled), config)
    assert (fits[1].members, fits[1].chosen, fits[1].validation) == \
        (fits2[1].members, fits2[1].chosen, fits2[1].validation)
    assert not np.array_equal(per_kind["lgbm"][0], per_kind2["lgbm"][0])  # the scramble reached fold 0's test span
    assert final.members and set(per_kind) >= {"best_ensemble", "stacking", "soft_voting"}
