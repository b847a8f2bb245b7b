"""Scores and evaluations: strategy walk-forward results (``strategy_backtest_results``),
ML models (``ml_model_results``) and ensembles (``ml_ensembles``), keyed by run date."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blofin_pipeline.store.connection import Store

STRATEGY_RESULT_KEY = ("run_date", "strategy", "version", "symbol")


# -- strategies ------------------------------------------------------------------------
def upsert_strategy_results(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write per-symbol results keyed by (run_date, strategy, version, symbol)."""
    return store.upsert("strategy_backtest_results", rows, key=STRATEGY_RESULT_KEY)


def strategies_with_phase(store: Store, run_date: str, phase: str) -> list[str]:
    """``name@version`` of the versions with results of ``phase`` on the run date."""
    return [f"{r['strategy']}@{r['version']}"
            for r in store.query_named("results_strategies_of_phase", {"run_date": run_date, "phase": phase})]


def delete_strategy_results(store: Store, run_date: str, phase: str, refs: Iterable[str]) -> None:
    """Withdraw the results of ``phase`` of these versions (``name@version``) on the run date."""
    with store.transaction():
        for ref in refs:
            name, version = ref.rsplit("@", 1)
            store.execute_named("results_delete_strategy", {"run_date": run_date, "phase": phase, "strategy": name,
                                                            "version": int(version)})


def strategy_results_for_ranking(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's per-symbol results of registered versions with category and status."""
    return store.query_named("results_strategies_for_ranking", {"run_date": run_date})


def strategy_results_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """Every result of the run date with its equity curve and registry fields (report)."""
    return store.query_named("results_strategies_on_date", {"run_date": run_date})


def day_scores(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's scoring results (phase 'score'), one row per version and symbol."""
    return store.query_named("results_day_scores", {"run_date": run_date})


def review_rows(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's results with each strategy's category, best score first (review)."""
    return store.query_named("results_review_rows", {"run_date": run_date})


def score_trend(store: Store, run_date: str, n_dates: int) -> list[dict[str, Any]]:
    """Mean score over symbols per version and run date, for the last ``n_dates`` dates."""
    return store.query_named("results_score_trend", {"run_date": run_date, "n_dates": n_dates})


def latest_results_date(store: Store) -> str | None:
    """The latest run date with strategy results."""
    return store.scalar_named("results_latest_date")


# -- ML models and ensembles ------------------------------------------------------------
def upsert_model_results(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write model rows keyed by (run_date, model_name)."""
    return store.upsert("ml_model_results", rows, key=("run_date", "model_name"))


def upsert_ensemble_results(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ensemble rows keyed by (run_date, ensemble_name)."""
    return store.upsert("ml_ensembles", rows, key=("run_date", "ensemble_name"))


def model_results_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's models with every metric, by name."""
    return store.query_named("results_models_on_date", {"run_date": run_date})


def ensemble_results_on(store: Store, run_date: str) -> list[dict[str, Any]]:
    """The run date's ensembles with every metric, by name."""
    return store.query_named("results_ensembles_on_date", {"run_date": run_date})


def delete_ml_results(store: Store, run_date: str) -> None:
    """Withdraw the run date's ML models and ensembles."""
    with store.transaction():
        store.execute_named("results_delete_models", {"run_date": run_date})
        store.execute_named("results_delete_ensembles", {"run_date": run_date})


def set_model_status(store: Store, run_date: str, name: str, status: str, reason: str | None) -> None:
    """Keep (active) or archive one of the run date's models."""
    store.execute_named("results_set_model_status",
                        {"run_date": run_date, "name": name, "status": status, "reason": reason})


def set_ensemble_status(store: Store, run_date: str, name: str, status: str, reason: str | None) -> None:
    """Keep (active) or archive one of the run date's ensembles."""
    store.execute_named("results_set_ensemble_status",
                        {"run_date": run_date, "name": name, "status": status, "reason": reason})


def oos_bars_on(store: Store, run_date: str) -> list[tuple[str, int]]:
    """(timeframe, out-of-sample bars) of every result of the run date that recorded its
    ``oos_bars`` in its metrics."""
    out = []
    for r in store.query_named("results_oos_bars", {"run_date": run_date}):
        try:
            bars = json.loads(r["metrics"] or "{}").get("oos_bars")
        except ValueError:
            continue
        if isinstance(bars, int) and bars > 1:
            out.append((r["timeframe"], bars))
    return out
