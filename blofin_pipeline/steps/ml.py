"""The ML steps: `ml_market_panel`, `train_ml_group` (mapped), `train_ml_models` (reduce).

1. `ml_market_panel` withdraws the date's ML results, computes the market panel (the
   cross-symbol series every symbol's features share) once from the closes, saves it, and
   returns the work list (`groups`: each one `train_ml_group`'s keyword arguments): the
   configured symbols in groups of `ml_group_size` (config);
2. `train_ml_group` (one task per group) loads only its symbols' candles, trains and
   evaluates them fold by fold (`ml.pipeline`: every choice on a fold's training part),
   upserts their model and ensemble rows, and saves the best ensemble's test-fold
   positions: no task holds every symbol's feature matrix;
3. `train_ml_models` scores the best ensemble (a procedure whose choice is made per fold
   on inner validation) as ONE strategy on every symbol, with the strategies' result-row,
   metric and DSR code, and records the ML trials.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from blofin_pipeline.config import RunContext
from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.market.window import load_window, score_window
from blofin_pipeline.steps.replace import ML_PHASE, ML_TRIAL_PREFIX, withdraw_ml
from blofin_pipeline.steps.runner import step
from blofin_pipeline.store import Store
from blofin_pipeline.store.registry import record_trials, trial_count
from blofin_pipeline.store.results import upsert_ensemble_results, upsert_model_results, upsert_strategy_results
from blofin_pipeline.strategies import registry, status

if TYPE_CHECKING:
    from blofin_pipeline.ml.config import MLConfig

logger = logging.getLogger(__name__)

# Trees and boosting rounds per model in the daily run, and the boosted models' step: every
# fold refits every model, and 50 rounds at 0.1 fit as well as 100 at 0.05 for 0.65x the CPU
# (3 symbols x 400 days, 8 folds: best-ensemble accuracy 0.605 vs 0.603 on a planted momentum
# edge, 0.600 vs 0.602 on mean reversion, 0.501 vs 0.499 on noise). bench/ml.py measures more.
ML_TREES = 50
ML_LEARNING_RATE = 0.1
# One thread per model fit: a fold's training part is ~1,400 rows, where threads cost more than
# they give (one symbol, 10 fits x 4 models: 5.8 CPU s with 1 thread, 8.3 with 2, and slower
# in wall time too); the cores are shared out by the mapped groups instead.
ML_THREADS = 1
MIN_ML_GROUPS = 2  # at least two groups when there are two symbols: both cores (or workers) train
PANEL_FILE = "market_panel.pkl"


def ml_config(ctx: RunContext) -> MLConfig:
    """The run's ML settings; the fold geometry is the strategies' (`score_one`'s walk_forward
    call: `wf_folds` folds after `wf_train_days` of initial training, rolling or anchored)."""
    from blofin_pipeline.ml.config import MLConfig

    cfg = ctx.config
    return MLConfig(fee=cfg.fee, slippage=cfg.slippage, seed=cfg.sample_seed, tree_estimators=ML_TREES,
                    boost_rounds=ML_TREES, learning_rate=ML_LEARNING_RATE, timeframe=cfg.timeframe, wf_folds=cfg.wf_folds,
                    train_bars=cfg.wf_train_bars, anchored=cfg.wf_anchored, n_jobs=ML_THREADS)


def ml_items(ctx: RunContext) -> list[str]:
    """Every ML item evaluated out of sample on the date: each model type, each ensemble."""
    from blofin_pipeline.ml.pipeline import ITEM_KINDS

    return [f"{ML_TRIAL_PREFIX}{kind}" for kind in (*ml_config(ctx).models, *ITEM_KINDS)]


def ml_trials(ctx: RunContext) -> list[tuple[str, int]]:
    """The date's ML trials, one entry per model type and ensemble with its number of symbols
    (each is an out-of-sample series per symbol); recorded by `train_ml_models`."""
    return [(item, len(ctx.config.symbols)) for item in ml_items(ctx)]


def _folder(ctx: RunContext) -> Path:
    folder = Path(ctx.artefacts_dir) / ctx.run_date
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def symbol_groups(symbols: list[str], max_size: int) -> list[list[str]]:
    """The symbols in as few groups of at most ``max_size`` as possible, but at least
    ``MIN_ML_GROUPS`` (when there are that many symbols), sizes differing by at most one."""
    n_groups = min(len(symbols), max(-(-len(symbols) // max_size), MIN_ML_GROUPS))
    return [[str(s) for s in part] for part in np.array_split(np.array(symbols, dtype=object), n_groups)]


@step
def ml_market_panel(ctx: RunContext, store: Store) -> dict[str, Any]:
    """The shared market panel, and the symbol groups to train."""
    from blofin_pipeline.ml.features import market_panel

    withdraw_ml(store, ctx.run_date)
    if not ctx.config.ml_enabled:
        return {"groups": [], "panel": None, "note": "ml_enabled=false: skipped"}
    symbols = list(ctx.config.symbols)
    # Closes only, one symbol at a time: the panel never needs the full candles together.
    closes = {s: load_window(ctx, store, [s])[s][["close"]] for s in symbols}
    panel = market_panel({s: c.assign(open=0.0, high=0.0, low=0.0, volume=0.0) for s, c in closes.items()})
    path = _folder(ctx) / PANEL_FILE
    pd.to_pickle({"panel": panel, "symbols": tuple(sorted(symbols))}, path)
    groups = symbol_groups(symbols, ctx.config.ml_group_size)
    work = [{"symbols": g, "chunk": i, "n_chunks": len(groups), "panel": str(path)} for i, g in enumerate(groups)]
    return {"groups": work, "panel": str(path), "symbols": len(symbols)}


@step
def train_ml_group(ctx: RunContext, store: Store, *, symbols: list[str], panel: str, chunk: int = 0,
                   n_chunks: int = 1) -> dict[str, Any]:
    """Train and evaluate one group of symbols (work item ``chunk`` of ``n_chunks``, which
    names its step log row) with the shared panel; upsert their rows."""
    from blofin_pipeline.ml.foldwise import BEST_ENSEMBLE
    from blofin_pipeline.ml.pipeline import train_and_evaluate

    shared = pd.read_pickle(panel)
    candles = load_window(ctx, store, symbols)
    result = train_and_evaluate(candles, run_date=ctx.run_date, artefact_dir=ctx.artefacts_dir,
                                config=ml_config(ctx), panel=shared["panel"], feature_symbols=shared["symbols"])
    upsert_model_results(store, [dict(m, run_date=ctx.run_date, status="active", archive_reason=None)
                                 for m in result.models])
    upsert_ensemble_results(store, [dict(e, run_date=ctx.run_date, status="active", archive_reason=None)
                                    for e in result.ensembles])
    best = {e["symbol"]: e for e in result.ensembles if e["method"] == BEST_ENSEMBLE}
    handoff = {s: {"positions": result.fold_positions[f"{BEST_ENSEMBLE}_{s}"], "artefact": best[s]["artefact_path"],
                   "members": best[s]["members"], "choices": result.details[f"{BEST_ENSEMBLE}_{s}"]["fold_choices"]}
               for s in best}
    path = _folder(ctx) / f"ml_group_{chunk}_of_{n_chunks}.pkl"
    pd.to_pickle(handoff, path)
    return {"symbols": symbols, "models": len(result.models), "ensembles": len(result.ensembles),
            "best_ensemble": str(path) if handoff else None}


ML_STRATEGY_CODE = '''"""ML best ensemble of {run_date}, one artefact per symbol.

Not a rule file: its positions come from the saved artefacts below. Over the scoring window
it is judged on its walk-forward test-fold positions (per fold, the ensemble its inner
validation chose); from here on, per symbol:
    signals_from_artefact(ARTEFACTS[symbol], candles_by_symbol, symbol)
"""
from blofin_pipeline.ml.inference import signals_from_artefact

ARTEFACTS = {artefacts!r}
'''


@step
def train_ml_models(ctx: RunContext, store: Store, *, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The reduce: score the best ensemble as one strategy on every symbol, record the trials."""
    if not ctx.config.ml_enabled:
        return {"note": "ml_enabled=false: skipped"}
    handoff: dict[str, dict[str, Any]] = {}
    for group in groups:
        if group["best_ensemble"]:
            handoff.update(pd.read_pickle(group["best_ensemble"]))
    missing = [s for s in ctx.config.symbols if s not in handoff]
    record_trials(store, ctx.run_date, ml_trials(ctx))
    if not handoff:
        return {"models": sum(g["models"] for g in groups), "ensembles": 0, "ensemble_as_strategy": None}
    if missing:
        raise PipelineError(f"train_ml_models: no best ensemble for {missing}: a training group is missing")
    ref = score_best_ensemble(ctx, store, handoff)
    return {"models": sum(g["models"] for g in groups), "ensembles": sum(g["ensembles"] for g in groups),
            "groups": len(groups), "ensemble_as_strategy": ref}


def _n_trials(ctx: RunContext, store: Store) -> int:
    """N of the ensemble-as-strategy's DSR (`store.registry.trial_count`): earlier dates'
    series plus the day's portfolio and ML items, one series per symbol each."""
    n_symbols = len(ctx.config.symbols)
    day = [(r.ref, n_symbols) for r in status.portfolio_at_start(store, ctx.run_date)] + ml_trials(ctx)
    return trial_count(store, ctx.run_date, day)


def score_best_ensemble(ctx: RunContext, store: Store, handoff: dict[str, dict[str, Any]]) -> str:
    """The best ensemble, scored as a strategy on every symbol beside the others.

    Its positions are the test-fold ones (no bar judged by a model, or a choice, that saw
    it), backtested with the walk-forward's code; its DSR uses the day's trial count with
    the ML trials. It joins the ranking as origin 'ml', category 'ml', named
    `ml_best_ensemble_<yyyymmdd>`, and supersedes the ML strategies active when the date
    started: today's models saw newer data.
    """
    from blofin_pipeline.backtest.scoring import result_row, with_deflated_sharpe
    from blofin_pipeline.ml.foldwise import ENSEMBLE_METHODS
    from blofin_pipeline.ml.metrics import backtest_folds

    cfg = ctx.config
    code = ML_STRATEGY_CODE.format(run_date=ctx.run_date, artefacts={s: h["artefact"] for s, h in handoff.items()})
    record = registry.register(store, name=f"ml_best_ensemble_{ctx.run_date.replace('-', '')}", category="ml",
                               params={}, param_space={}, code=code, origin="ml", run_date=ctx.run_date,
                               status="active", rationale="best ensemble per fold on inner validation")
    for old in status.statuses_at(store, ctx.run_date):
        if old.origin == "ml" and old.status == "active" and old.ref != record.ref:
            status.set_status(store, old.name, old.version, "archived", f"superseded by {record.ref}",
                              run_date=ctx.run_date, step="train_ml_models")
            logger.info("ML strategy %s superseded by %s", old.ref, record.ref)
    n_total = _n_trials(ctx, store)
    rows = []
    for symbol in cfg.symbols:
        positions = handoff[symbol]["positions"]
        candles = load_window(ctx, store, [symbol])[symbol]
        returns, equity, metrics = backtest_folds(candles, positions, (cfg.fee, cfg.slippage, cfg.timeframe))
        metrics = with_deflated_sharpe(metrics, returns.to_numpy(), n_total)
        rows.append(result_row(ctx, (record.name, record.version, symbol, ML_PHASE),
                               (score_window(ctx)[0], ctx.data_end), metrics,
                               {"fold_choices": handoff[symbol]["choices"], "members": handoff[symbol]["members"]},
                               equity))
    upsert_strategy_results(store, rows)
    logger.info("ML best ensemble scored as strategy %s: sharpe %s", record.ref,
                " ".join(f"{r['symbol']}={r['sharpe']:+.2f}" for r in rows))
    return record.ref
