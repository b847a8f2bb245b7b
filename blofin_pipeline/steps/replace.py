"""What each step owns of a run date, withdrawn when the step runs for the date again.

A date's rows are a function of the date and its parameters: a retry, a Clear in the web
UI, a second trigger on the same day with other parameters, a re-run of an older date, all
*replace* the date's rows. Each step first withdraws the rows it wrote for the date on an
earlier run, then writes them again; rows it would write identically come back identical,
rows the new run does not make (another symbol, another portfolio, fewer designs) are gone.

| step | owns on its date |
|---|---|
| plan_scoring | the step-log rows of the date's `score_strategies` chunks (a plan with fewer chunks leaves none behind) |
| score_strategies (chunk k) | `score` results, trials and scoring-failure archivals of its chunk; chunk 0 also the `score` results and trials of versions no longer in the portfolio |
| design_strategies / tune_strategies | the versions it registered that no other date used, its status entries, the `designed` / `tuned` notes |
| ml_market_panel (for the ML chain) | the date's models and ensembles, its ensemble-as-strategy (results, trials, version, status entries), its `ml:` trials |
| backtest_candidates | `candidate` results, the trials of strategy versions outside the portfolio and the ensemble-as-strategy, its status entries, the `accepted` / `rejected` notes |
| rank_and_update | (ranking.ranker.withdraw_ranking) its decisions, status entries and archival notes |
| generate_report / ai_review | the report row and files, rewritten whole |
"""
from __future__ import annotations

import logging
from collections.abc import Collection

from blofin_pipeline.store import Store
from blofin_pipeline.store.knowledge import (
    withdraw_knowledge_of_kind,
    withdraw_notes_of_step,
)
from blofin_pipeline.store.registry import delete_trials, items_with_trials_on
from blofin_pipeline.store.results import (
    delete_ml_results,
    delete_strategy_results,
    strategies_with_phase,
)
from blofin_pipeline.strategies.status import withdraw_registrations, withdraw_statuses

logger = logging.getLogger(__name__)

SCORE_PHASE, CANDIDATE_PHASE, ML_PHASE = "score", "candidate", "ml"
ML_TRIAL_PREFIX = "ml:"  # research_trials items of the ML models and ensembles (`steps.ml.ml_trials`)


def withdraw_scores(store: Store, run_date: str, mine: Collection[str], portfolio: Collection[str] | None) -> None:
    """Before a scoring chunk scores ``mine`` again; ``portfolio`` (given to one chunk only)
    is the whole portfolio, whose outsiders' `score` rows go too."""
    stale = [] if portfolio is None else [ref for ref in strategies_with_phase(store, run_date, SCORE_PHASE)
                                          if ref not in portfolio]
    delete_strategy_results(store, run_date, SCORE_PHASE, [*mine, *stale])
    delete_trials(store, run_date, [*mine, *stale])
    withdraw_statuses(store, run_date, "score_strategies", mine)
    withdraw_notes_of_step(store, run_date, "archived", "score_strategies", mine)
    if portfolio is not None:  # failures of versions no longer scored on the date
        gone = withdraw_statuses(store, run_date, "score_strategies", except_refs=portfolio)
        withdraw_notes_of_step(store, run_date, "archived", "score_strategies", gone)
    if stale:
        logger.info("re-run of %s: withdrew the scores of %d version(s) no longer in the portfolio: %s",
                    run_date, len(stale), ", ".join(stale))


def withdraw_candidates(store: Store, run_date: str, portfolio: Collection[str]) -> None:
    """Before backtest_candidates checks the date's candidates again."""
    delete_strategy_results(store, run_date, CANDIDATE_PHASE, strategies_with_phase(store, run_date, CANDIDATE_PHASE))
    # every strategy version's series but the portfolio's (score_strategies') and the
    # ensemble-as-strategy's; ML items (``ml:``) are the ML chain's
    others = set(portfolio) | set(strategies_with_phase(store, run_date, ML_PHASE))
    delete_trials(store, run_date, {i for i in items_with_trials_on(store, run_date) - others
                                    if not i.startswith(ML_TRIAL_PREFIX)})
    withdraw_statuses(store, run_date, "backtest_candidates")
    for kind in ("accepted", "rejected"):
        withdraw_knowledge_of_kind(store, run_date, kind)


def withdraw_research(store: Store, run_date: str, origin: str) -> None:
    """Before a research step (designer, tuner) registers the date's candidates again."""
    withdraw_knowledge_of_kind(store, run_date, {"designer": "designed", "tuner": "tuned"}[origin])
    withdraw_registrations(store, run_date, origin)


def withdraw_ml(store: Store, run_date: str) -> None:
    """Before the ML steps train the date's models again."""
    delete_ml_results(store, run_date)
    mine = set(strategies_with_phase(store, run_date, ML_PHASE))
    delete_trials(store, run_date, mine | {i for i in items_with_trials_on(store, run_date)
                                           if i.startswith(ML_TRIAL_PREFIX)})
    delete_strategy_results(store, run_date, ML_PHASE, sorted(mine))
    withdraw_registrations(store, run_date, "ml")
