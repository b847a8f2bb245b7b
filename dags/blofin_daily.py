"""
### blofin_daily: the daily research loop for BloFin trading strategies

Every day at 00:00 UTC:

1. **ingest_candles**: fetch closed candles from the last stored one up to the end of the
   run's data interval, validate them (duplicates, order, OHLC, gaps) and upsert them;
2. **plan_scoring** sizes the work (active strategies x symbols x window bars) into chunks;
   **score_strategies**, mapped over them (a Celery deployment spreads the chunks), runs the
   walk-forward, out-of-sample backtest of every active strategy on every symbol;
3. **research**: in parallel, *design_strategies* (Claude, or the offline composer),
   *tune_strategies* (Claude, or Optuna offline) and the ML chain: *ml_market_panel* (the
   cross-symbol panel, once, and the symbol groups), *train_ml_group* (mapped, one task per
   group of symbols) and *train_ml_models* (scores the best ensemble as a strategy);
4. **backtest_candidates**: static check, sandboxed run and lookahead check of every new
   candidate, then the same scoring; passing ones become active;
5. **rank_and_update**: keep the top strategies, models and ensembles, archive the rest
   with a reason, log every decision;
6. **generate_report** (JSON, database, HTML) and **ai_review** (Claude, or by rule when
   the LLM review cannot be had, with the reason);
7. **check_run**: fails the run when a research step failed, after everything else ran, so
   the grid shows it.

With no `anthropic_default` connection (or `llm_mode=offline`) design, tuning and review
run in their deterministic offline modes. With `llm_batch=true` the design and tune
requests go through the Message Batches API at half price; the tasks wait for their batch
deferred (no worker slot held) and call the API directly if it does not end in time.
`data_source=sample` is a SYNTHETIC market; `data_source=stored` researches the candles
already stored (e.g. an imported CSV) as they are.
All logic lives in the `blofin_pipeline` package; this file only wires it.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, TaskGroup, TriggerRule, task
from blofin_llm_operator import LLMStepOperator

default_args = {
    "owner": "research",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    # Accepted strategy code runs in the worker: no task may hang a run forever.
    "execution_timeout": timedelta(hours=2),
}

params = {
    "symbols": Param(["BTC-USDT", "ETH-USDT", "SOL-USDT"], type="array", items={"type": "string"},
                     description="BloFin instrument ids to ingest and score."),
    "timeframe": Param("1H", type="string", enum=["1m", "5m", "15m", "30m", "1H", "4H", "1D"],
                       description="Bar size (BloFin spelling)."),
    "data_source": Param("sample", type="string", enum=["sample", "blofin", "stored"],
                         description="sample = built-in SYNTHETIC market (offline); blofin = the exchange's REST API; "
                                     "stored = exactly the candles already in the data database (e.g. from "
                                     "import-candles or earlier ingests), nothing fetched. Reports are labelled by "
                                     "the stored candles' own source."),
    "history_days": Param(400, type="integer", minimum=30, maximum=3650,
                          description="How far back the first ingest of a symbol starts."),
    "score_window_days": Param(0, type="integer", minimum=0, maximum=3650,
                               description="Span scored each run (walk-forward), ending at the run's data end; "
                                           "0 = the whole stored history."),
    "wf_train_days": Param(60, type="integer", minimum=1, maximum=3650,
                           description="Walk-forward: initial training span in days (also the rolling training "
                                       "window); the same for every strategy, model and ensemble."),
    "wf_folds": Param(8, type="integer", minimum=1, maximum=100,
                      description="Walk-forward: test folds the span after the initial training is cut into."),
    "wf_anchored": Param(False, type="boolean",
                         description="Walk-forward: train each fold on everything before it (else a rolling "
                                     "window of wf_train_days)."),
    "score_chunk_work": Param(4_000_000, type="integer", minimum=1,
                              description="Strategy x symbol x bar evaluations per mapped score_strategies task "
                                          "(the day's work / this = the number of chunks, at most one per strategy)."),
    "ml_group_size": Param(8, type="integer", minimum=1, maximum=100,
                           description="Symbols per mapped research.train_ml_group task (its memory holds only "
                                       "these symbols' features)."),
    "sample_seed": Param(0, type="integer", description="Seed of the synthetic market."),
    # Nullable: the Trigger form treats an empty required string as missing.
    "sample_edge": Param(None, type=["null", "string"],
                         description="Plant a known edge in the synthetic market, e.g. 'momentum:0.3'. Empty = none."),
    "fee": Param(0.0006, type="number", minimum=0, maximum=0.01, description="Fee per unit of position change (taker 0.06%)."),
    "slippage": Param(0.0001, type="number", minimum=0, maximum=0.01, description="Slippage per unit of position change."),
    "n_designs": Param(3, type="integer", minimum=0, maximum=10, description="New strategies to design."),
    "n_tunes": Param(3, type="integer", minimum=0, maximum=10, description="Underperformers to tune."),
    "ml_enabled": Param(True, type="boolean", description="Train and evaluate ML models and ensembles."),
    "top_strategies": Param(20, type="integer", minimum=1, description="Strategies kept active by the ranker."),
    "top_models": Param(5, type="integer", minimum=1, description="ML models kept (by F1)."),
    "top_ensembles": Param(3, type="integer", minimum=1, description="Ensembles kept (by accuracy)."),
    "llm_mode": Param("auto", type="string", enum=["auto", "offline", "online"],
                      description="auto = use Claude iff the anthropic_default connection exists."),
    "llm_budget_usd": Param(5.0, type="number", minimum=0,
                            description="Daily LLM budget; each call reserves its worst case first, LLM steps stop "
                                        "when the budget cannot cover the next call."),
    "llm_batch": Param(False, type="boolean",
                       description="Send the design and tune requests through the Message Batches API (half price); "
                                   "the tasks wait deferred, and call directly if the batch does not end in time."),
}


# The LLM research steps, imported when their task runs (never at parse time).
def _design_step():
    from blofin_pipeline.steps import design_strategies

    return design_strategies


def _tune_step():
    from blofin_pipeline.steps import tune_strategies

    return tune_strategies


# Each task body imports its step lazily (nothing heavy at parse time) and hands it to the
# adapter, which builds the run's context: task -> step function -> domain code.


with DAG(
    dag_id="blofin_daily",
    description="Daily research loop: ingest, score, design/tune/ML, validate, rank, report.",
    doc_md=__doc__,
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params=params,
    tags=["blofin", "research", "trading"],
) as dag:

    @task(task_id="ingest_candles")
    def ingest_candles():
        from blofin_airflow import run

        from blofin_pipeline.steps import ingest_candles as step

        return run(step)

    @task(task_id="plan_scoring")
    def plan_scoring():
        from blofin_airflow import run

        from blofin_pipeline.steps import plan_scoring as step

        return run(step)["chunks"]

    @task(task_id="score_strategies")
    def score_strategies(chunk: int, n_chunks: int):
        from blofin_airflow import run

        from blofin_pipeline.steps import score_strategies as step

        return run(step, chunk=chunk, n_chunks=n_chunks)

    with TaskGroup("research", tooltip="design, tune and ML in parallel") as research:

        LLMStepOperator(task_id="design_strategies", step=_design_step, pool="anthropic_api")
        LLMStepOperator(task_id="tune_strategies", step=_tune_step, pool="anthropic_api")

        @task(task_id="ml_market_panel")
        def ml_market_panel():
            from blofin_airflow import run

            from blofin_pipeline.steps import ml_market_panel as step

            return run(step)["groups"]  # the work list: one entry per symbol group

        @task(task_id="train_ml_group")
        def train_ml_group(symbols: list[str], chunk: int, n_chunks: int, panel: str):
            from blofin_airflow import run

            from blofin_pipeline.steps import train_ml_group as step

            return run(step, symbols=list(symbols), chunk=chunk, n_chunks=n_chunks, panel=panel)

        # The reduce keeps the fixed task id; none_failed: with ML disabled there is no group to wait for.
        @task(task_id="train_ml_models", trigger_rule=TriggerRule.NONE_FAILED)
        def train_ml_models(groups):
            from blofin_airflow import run

            from blofin_pipeline.steps import train_ml_models as step

            return run(step, groups=list(groups))

        # One task per symbol group: the work list is sized from the configured symbols.
        train_ml_models(train_ml_group.expand_kwargs(ml_market_panel()))

    @task(task_id="backtest_candidates", trigger_rule=TriggerRule.ALL_DONE)
    def backtest_candidates():
        from blofin_airflow import run

        from blofin_pipeline.steps import backtest_candidates as step

        return run(step)

    @task(task_id="rank_and_update", trigger_rule=TriggerRule.ALL_DONE)
    def rank_and_update():
        from blofin_airflow import run

        from blofin_pipeline.steps import rank_and_update as step

        return run(step)

    @task(task_id="generate_report", trigger_rule=TriggerRule.ALL_DONE)
    def generate_report():
        from blofin_airflow import run

        from blofin_pipeline.steps import generate_report as step

        return run(step)

    @task(task_id="ai_review", pool="anthropic_api", trigger_rule=TriggerRule.ALL_DONE)
    def ai_review():
        from blofin_airflow import run

        from blofin_pipeline.steps import ai_review as step

        return run(step, llm=True)

    @task(task_id="check_run", trigger_rule=TriggerRule.ALL_DONE)
    def check_run():
        from blofin_airflow import run

        from blofin_pipeline.steps import check_run as step

        return run(step)

    chunks = plan_scoring()
    scored = score_strategies.expand_kwargs(chunks)
    ingest_candles() >> chunks
    (scored >> research >> backtest_candidates() >> rank_and_update() >> generate_report()
     >> ai_review() >> check_run())
