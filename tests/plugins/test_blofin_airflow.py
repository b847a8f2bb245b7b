"""The Airflow adapter: a configuration error fails the task at once, without retries."""
from __future__ import annotations

import sys
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

import blofin_airflow  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

DAY = pendulum.datetime(2026, 11, 20, tz="UTC")


def _context(params: dict) -> dict:
    return {"logical_date": DAY, "data_interval_end": DAY, "params": params}


@pytest.fixture
def task_context(monkeypatch, tmp_path):
    monkeypatch.setenv("BLOFIN_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_BLOFIN_DB", '{"conn_type": "sqlite", "host": "' + str(tmp_path / "data.db") + '"}')
    holder: dict = {}
    monkeypatch.setattr("airflow.sdk.get_current_context", lambda: holder["context"])
    return holder


def test_a_cross_field_config_error_fails_without_retries(task_context):
    task_context["context"] = _context({"history_days": 400, "score_window_days": 60, "wf_train_days": 90})
    called = []
    with pytest.raises(AirflowFailException, match=r"wf_train_days \(90\) must be shorter than score_window_days \(60\)"):
        blofin_airflow.run(lambda ctx: called.append(ctx))
    assert not called  # no work was done


@pytest.mark.parametrize("params, message", [
    ({"timeframe": "1D", "score_window_days": 180, "wf_train_days": 90}, "scoring needs at least 200"),
    ({"symbols": ["BTC-USDT", "btc-usdt"]}, "each symbol once"),
    ({"symbols": ["BTC/USDT"]}, "instrument ids"),
    ({"strategy_metric": "drop table"}, "strategy_metric 'drop table'"),
    ({"llm_mode": "online"}, "llm_mode=online but connection 'anthropic_default' is not defined"),
])
def test_every_task_rejects_parameters_that_cannot_work_together(task_context, params, message):
    task_context["context"] = _context(params)
    called = []
    with pytest.raises(AirflowFailException, match=message):
        blofin_airflow.run(lambda ctx: called.append(ctx))
    assert not called


def test_a_step_checks_the_synthetic_edge_before_any_work(task_context, tmp_path):
    from blofin_pipeline.steps import score_strategies

    task_context["context"] = _context({"sample_edge": "momentum=0.3"})
    with pytest.raises(AirflowFailException, match="must look like 'momentum:0.1'"):
        blofin_airflow.run(score_strategies)
    assert not (tmp_path / "data.db").exists()  # failed before opening the data database


def test_a_config_error_raised_inside_a_step_also_fails_without_retries(task_context):
    from blofin_pipeline.exceptions import ConfigError

    task_context["context"] = _context({})

    def step(ctx):
        raise ConfigError("strategy_metric 'nope' is not a metric")

    with pytest.raises(AirflowFailException, match="strategy_metric"):
        blofin_airflow.run(step)


def test_other_errors_stay_retryable(task_context):
    task_context["context"] = _context({})

    def step(ctx):
        raise RuntimeError("exchange timed out")

    with pytest.raises(RuntimeError, match="exchange timed out"):
        blofin_airflow.run(step)


def test_a_valid_context_reaches_the_step_with_its_parameters(task_context):
    task_context["context"] = _context({"symbols": ["btc-usdt"], "history_days": 60, "score_window_days": 30,
                                       "wf_train_days": 15})
    seen = blofin_airflow.run(lambda ctx: {"symbols": ctx.config.symbols, "date": ctx.run_date})
    assert seen == {"symbols": ("BTC-USDT",), "date": "2026-11-20"}
