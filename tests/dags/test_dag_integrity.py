"""DAG integrity tests in the Astronomer manner: imports, names, retries, rules, parse-time hygiene."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
EXPECTED_TASKS = {
    "ingest_candles", "plan_scoring", "score_strategies", "research.design_strategies", "research.tune_strategies",
    "research.ml_market_panel", "research.train_ml_group", "research.train_ml_models", "backtest_candidates",
    "rank_and_update", "generate_report", "ai_review",
    "check_run",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    print(f"\nDAG folder parsed in {time.perf_counter() - start:.2f} s")
    return bag


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.get_dag("blofin_daily")


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert list(dagbag.dag_ids) == ["blofin_daily"]


def test_schedule_and_run_settings(dag):
    assert dag.schedule == "0 0 * * *" or getattr(dag.timetable, "_expression", None) == "0 0 * * *"
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.tags and {"blofin", "research"} <= set(dag.tags)
    assert dag.doc_md and "ingest_candles" in dag.doc_md


def test_task_ids_and_order(dag):
    assert set(dag.task_dict) == EXPECTED_TASKS
    down = {t: set(dag.task_dict[t].downstream_task_ids) for t in dag.task_dict}
    assert down["ingest_candles"] == {"plan_scoring"}
    assert down["plan_scoring"] == {"score_strategies"}
    assert down["score_strategies"] == {"research.design_strategies", "research.tune_strategies",
                                        "research.ml_market_panel"}
    assert down["research.ml_market_panel"] == {"research.train_ml_group"}
    assert down["research.train_ml_group"] == {"research.train_ml_models"}
    for t in ("research.design_strategies", "research.tune_strategies", "research.train_ml_models"):
        assert down[t] == {"backtest_candidates"}
    assert down["backtest_candidates"] == {"rank_and_update"}
    assert down["rank_and_update"] == {"generate_report"}
    assert down["generate_report"] == {"ai_review"}
    assert down["ai_review"] == {"check_run"} and down["check_run"] == set()  # the leaf: the run's state


def test_retries_with_exponential_backoff(dag):
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_later_steps_run_even_if_a_research_branch_fails(dag):
    for t in ("backtest_candidates", "rank_and_update", "generate_report", "ai_review", "check_run"):
        assert dag.task_dict[t].trigger_rule == "all_done", t
    assert dag.task_dict["ingest_candles"].trigger_rule == "all_success"


def test_llm_tasks_use_the_anthropic_pool(dag):
    for t in ("research.design_strategies", "research.tune_strategies", "ai_review"):
        assert dag.task_dict[t].pool == "anthropic_api", t
    assert dag.task_dict["research.train_ml_models"].pool != "anthropic_api"


def test_ml_is_mapped_over_symbol_groups_and_reduced_under_its_fixed_id(dag):
    """The ML training is one mapped task per symbol group (the work list comes from the
    panel task at run time), reduced by `research.train_ml_models`, which also runs when ML is
    disabled (no group: skipped upstream) but not when a group failed."""
    group = dag.task_dict["research.train_ml_group"]
    assert group.is_mapped
    assert not dag.task_dict["research.train_ml_models"].is_mapped and not dag.task_dict["research.ml_market_panel"].is_mapped
    assert dag.task_dict["research.train_ml_models"].trigger_rule == "none_failed"
    assert group.pool != "anthropic_api"


def test_the_llm_research_tasks_can_wait_for_their_batch_deferred(dag):
    from blofin_llm_operator import LLMStepOperator

    for t in ("research.design_strategies", "research.tune_strategies"):
        task = dag.task_dict[t]
        assert isinstance(task, LLMStepOperator), t
        assert callable(getattr(task, "execute_complete")), t
        assert task.step().__name__ == t.split(".")[1]  # the step it runs is the one it is named after
    assert dag.params["llm_batch"] is False


def test_scoring_is_mapped_over_the_plan(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    scoring = dag.task_dict["score_strategies"]
    assert isinstance(scoring, MappedOperator)
    assert scoring.upstream_task_ids == {"plan_scoring"}  # the chunk list comes from the plan, not a constant
    assert dag.params["score_chunk_work"] >= 1


def test_params_are_typed_and_described(dag):
    params = dag.params
    for name in ("symbols", "timeframe", "data_source", "history_days", "score_window_days", "sample_edge",
                 "n_designs", "n_tunes", "llm_mode", "llm_budget_usd", "llm_batch", "top_strategies", "top_models",
                 "top_ensembles"):
        assert name in params, name
        param = params.get_param(name)
        assert param.description, name
        assert "type" in param.schema, name
    assert params["data_source"] == "sample"  # the embedded default
    from blofin_pipeline.config import DATA_SOURCES

    assert tuple(params.get_param("data_source").schema["enum"]) == DATA_SOURCES
    assert params["llm_mode"] == "auto"


def test_params_match_the_pipeline_config():
    """Every DAG param except the DAG's own knobs is a PipelineConfig field (and valid)."""
    from airflow.dag_processing.dagbag import DagBag

    from blofin_pipeline.config import PipelineConfig

    dag = DagBag(dag_folder=str(DAGS)).get_dag("blofin_daily")
    values = {k: dag.params[k] for k in dag.params.keys()}
    config = PipelineConfig.from_params(values)
    assert set(values) <= set(config.to_dict())


PARSE_PROBE = r"""
import json, sys, time, sqlite3
sys.path.insert(0, sys.argv[2])
calls = []
def forbid(name):
    def f(*a, **k):
        calls.append(name)
        raise RuntimeError(name + " at parse time")
    return f
import airflow.sdk as sdk
sdk.BaseHook.get_connection = classmethod(forbid("connection"))
sdk.Variable.get = staticmethod(forbid("variable"))
sqlite3.connect = forbid("sqlite3.connect")
t = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("blofin_daily", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
elapsed = time.perf_counter() - t
heavy = sorted(m for m in ("sklearn", "lightgbm", "optuna", "anthropic", "blofin_pipeline", "psycopg") if m in sys.modules)
print(json.dumps({"calls": calls, "heavy": heavy, "seconds": elapsed}))
"""


def test_parse_touches_no_db_connection_or_variable_and_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", PARSE_PROBE, str(DAGS / "blofin_daily.py"), str(ROOT / "plugins")],
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nblofin_daily.py parsed in {result['seconds']:.3f} s (after airflow.sdk import)")
    assert result["calls"] == []
    assert result["heavy"] == []
