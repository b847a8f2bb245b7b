"""Run configuration: one frozen dataclass built once from the DAG's params (or the CLI)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from blofin_pipeline.costs import DEFAULT_FEE, DEFAULT_SLIPPAGE, Costs
from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.timeframes import timeframe_minutes

DATA_SOURCES = ("sample", "blofin", "stored")
LLM_MODES = ("auto", "offline", "online")
DEFAULT_SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)+$")   # BloFin instrument ids: BTC-USDT
MIN_SCORE_BARS = 200     # bars the scoring window must hold (walk-forward folds, a meaningful DSR)
STRATEGY_METRICS = ("score", "sharpe", "deflated_sharpe", "sortino", "total_return", "cagr", "max_drawdown",
                    "calmar", "win_rate", "profit_factor", "exposure")
ML_METRICS = ("f1", "accuracy", "precision", "recall", "roc_auc", "log_loss", "backtest_sharpe", "backtest_return")


@dataclass(frozen=True)
class PipelineConfig:
    """Every run knob. Defaults are the embedded default: offline, synthetic data."""

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    timeframe: str = "1H"
    data_source: str = "sample"          # sample (synthetic, offline) | blofin (exchange) | stored (as in the DB)
    history_days: int = 400              # first ingest of a symbol starts this far back
    score_window_days: int = 0           # span scored each run, ending at the run's data end; 0: all stored history
    wf_train_days: int = 60              # walk-forward: initial training span (the rolling training window)
    sample_seed: int = 0
    sample_edge: str = ""                # e.g. "momentum:0.1" plants a known edge
    fee: float = DEFAULT_FEE             # BloFin taker fee per unit of position change
    slippage: float = DEFAULT_SLIPPAGE
    wf_folds: int = 8                    # walk-forward: test folds after the initial training span
    wf_anchored: bool = False            # walk-forward: train on everything before each fold (else rolling)
    wf_candidates: int = 6               # parameter sets tried per fold
    score_chunk_work: int = 4_000_000    # strategy x symbol x bar evaluations per mapped scoring task
    ml_group_size: int = 8               # symbols per mapped ML training task (bounds its memory)
    top_strategies: int = 20
    top_models: int = 5
    top_ensembles: int = 3
    strategy_metric: str = "score"
    model_metric: str = "f1"
    ensemble_metric: str = "accuracy"
    n_designs: int = 3
    n_tunes: int = 3
    tune_trials: int = 12
    ml_enabled: bool = True
    llm_mode: str = "auto"               # auto: online iff anthropic_default exists
    llm_budget_usd: float = 5.0
    llm_batch: bool = False              # design and tune requests through the Message Batches API

    def __post_init__(self) -> None:
        """Every knob checked, alone and against the others, before any work is done: a
        ConfigError here fails a run's first task at once (no retries) instead of a late one."""
        self._check_each()
        self._check_together()

    def _check_each(self) -> None:
        if not self.symbols:
            raise ConfigError("symbols: at least one symbol is needed")
        bad = [s for s in self.symbols if not SYMBOL_PATTERN.match(s)]
        if bad:
            raise ConfigError(f"symbols {bad}: expected BloFin instrument ids such as BTC-USDT")
        timeframe_minutes(self.timeframe)
        if self.data_source not in DATA_SOURCES:
            raise ConfigError(f"data_source {self.data_source!r}: expected one of {DATA_SOURCES}")
        if self.llm_mode not in LLM_MODES:
            raise ConfigError(f"llm_mode {self.llm_mode!r}: expected one of {LLM_MODES}")
        for name in ("history_days", "wf_train_days", "wf_folds", "top_strategies", "top_models",
                     "top_ensembles", "wf_candidates", "tune_trials", "score_chunk_work",
                     "ml_group_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_designs", "n_tunes", "score_window_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} cannot be negative, got {getattr(self, name)!r}")
        if not (0 <= self.fee < 0.05 and 0 <= self.slippage < 0.05):
            raise ConfigError("fee and slippage are fractions, e.g. 0.0006 for 0.06%")
        if self.llm_budget_usd < 0:
            raise ConfigError("llm_budget_usd cannot be negative")
        for name, allowed in (("strategy_metric", STRATEGY_METRICS), ("model_metric", ML_METRICS),
                              ("ensemble_metric", ML_METRICS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")

    def _check_together(self) -> None:
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"symbols {list(self.symbols)}: each symbol once")
        if not isinstance(self.wf_anchored, bool):
            raise ConfigError(f"wf_anchored must be true or false, got {self.wf_anchored!r}")
        if self.score_window_days == 0:  # the whole stored history: checked against the candles when loaded
            return
        if self.wf_train_days >= self.score_window_days:
            raise ConfigError(f"wf_train_days ({self.wf_train_days}) must be shorter than score_window_days "
                              f"({self.score_window_days}): the walk-forward tests on the span after its initial "
                              "training days (score_window_days=0 scores the whole stored history)")
        bars = self.score_window_days * 1440 // timeframe_minutes(self.timeframe)
        if bars < MIN_SCORE_BARS:
            need = -(-MIN_SCORE_BARS * timeframe_minutes(self.timeframe) // 1440)
            raise ConfigError(f"score_window_days ({self.score_window_days}) of {self.timeframe} bars is {bars} bars; "
                              f"scoring needs at least {MIN_SCORE_BARS}: use score_window_days >= {need} "
                              "or a shorter timeframe")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PipelineConfig:
        """Build from a dict (DAG params), ignoring keys that are not config fields."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in params.items() if k in names and v is not None}
        if "symbols" in kwargs:
            symbols = kwargs["symbols"]
            if isinstance(symbols, str):
                symbols = [s for s in symbols.replace(",", " ").split() if s]
            kwargs["symbols"] = tuple(str(s).strip().upper() for s in symbols)
        return cls(**kwargs)

    @property
    def wf_train_bars(self) -> int:
        """The walk-forward's initial training span in bars (the same for every item)."""
        return self.wf_train_days * 1440 // timeframe_minutes(self.timeframe)

    def with_(self, **changes: Any) -> PipelineConfig:
        return replace(self, **changes)

    @property
    def costs(self) -> Costs:
        return Costs(fee=self.fee, slippage=self.slippage, timeframe=self.timeframe)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["symbols"] = list(self.symbols)
        return d


@dataclass(frozen=True)
class RunContext:
    """What one step needs to know about its run."""

    run_date: str                 # logical date, YYYY-MM-DD: the key of every write
    data_end: pd.Timestamp        # end of the run's data interval (UTC): no data after it
    config: PipelineConfig
    db_url: str
    workspace: Path
    run_id: str = ""              # which run: the Airflow dag run id, or a local id
    triggered_at: str = ""        # when that run was asked for (ISO-8601 UTC)

    @property
    def reports_dir(self) -> Path:
        return self.workspace / "data" / "reports"

    @property
    def artefacts_dir(self) -> Path:
        return self.workspace / "data" / "models"

    @classmethod
    def create(cls, *, logical_date: pd.Timestamp | str, data_end: pd.Timestamp | str | None,
               config: PipelineConfig, db_url: str, workspace: Path | str, run_id: str | None = None,
               triggered_at: pd.Timestamp | str | None = None) -> RunContext:
        """Without a run id (tests, the CLI) the run is named ``local__<triggered_at>``."""
        ld = _utc(logical_date)
        end = _utc(data_end) if data_end is not None else ld
        when = _utc(triggered_at if triggered_at is not None else pd.Timestamp.now(tz="UTC")).isoformat(
            timespec="seconds")
        return cls(ld.strftime("%Y-%m-%d"), end, config, db_url, Path(workspace),
                   run_id or f"local__{when}", when)


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def default_workspace() -> Path:
    import os

    return Path(os.environ.get("BLOFIN_WORKSPACE", Path.cwd() / "workspace")).resolve()


def default_db_url(workspace: Path) -> str:
    return f"sqlite:///{workspace / 'data' / 'blofin_monitor.db'}"
