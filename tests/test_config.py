"""The run configuration's span and walk-forward geometry (issue 11, decision 2)."""
from __future__ import annotations

import pandas as pd
import pytest

from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.market.window import EVERY_CANDLE_START, score_window


def test_defaults_score_the_whole_history_after_sixty_training_days():
    cfg = PipelineConfig()
    assert (cfg.score_window_days, cfg.wf_train_days, cfg.wf_folds, cfg.wf_anchored) == (0, 60, 8, False)
    assert cfg.wf_train_bars == 60 * 24
    assert PipelineConfig(timeframe="4H", wf_train_days=30).wf_train_bars == 180


def test_window_zero_is_every_stored_candle_and_a_long_window_is_allowed():
    end = pd.Timestamp("2026-03-01", tz="UTC")
    ctx = RunContext.create(logical_date=end, data_end=end, config=PipelineConfig(), db_url="sqlite://",
                            workspace=".")
    assert score_window(ctx) == (EVERY_CANDLE_START, end)
    longer = PipelineConfig(history_days=100, score_window_days=500)  # longer than the history: all of it
    ctx = RunContext.create(logical_date=end, data_end=end, config=longer, db_url="sqlite://", workspace=".")
    assert score_window(ctx) == (end - pd.Timedelta(days=500), end)


@pytest.mark.parametrize("changes, message", [
    ({"score_window_days": -1}, "score_window_days cannot be negative"),
    ({"score_window_days": 60, "wf_train_days": 60}, r"wf_train_days \(60\) must be shorter than score_window_days"),
    ({"wf_train_days": 0}, "wf_train_days must be >= 1"),
    ({"wf_folds": 0}, "wf_folds must be >= 1"),
    ({"wf_anchored": "yes"}, "wf_anchored must be true or false"),
])
def test_bad_geometry_is_refused_naming_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**changes)
