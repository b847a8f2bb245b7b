"""Run configuration: one frozen dataclass built once from the DAG's params (or the CLI)."""
from __future__ import annotations

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


@dataclass(frozen=True)
class PipelineConfig:
    """Every run knob. Defaults are the embedded default: offline, synthetic data."""

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    timeframe: str = "1H"
    data_source: str = "sample"          # sample (synthetic, offline) | blofin (exchange) | stored (as in the DB)
    history_days: int = 400              # first ingest of a symbol starts this far back
    score_window_days: int = 180         # window scored out of sample each run
    sample_seed: int = 0
    sample_edge: str = ""                # e.g. "momentum:0.1" plants a known edge
    fee: float = DEFAULT_FEE             # BloFin taker fee per unit of position change
    slippage: float = DEFAULT_SLIPPAGE
    wf_folds: int = 4                    # walk-forward folds
    wf_candidates: int = 6               # parameter sets tried per fold
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
        if not self.symbols:
            raise ConfigError("symbols: at least one symbol is needed")
        timeframe_minutes(self.timeframe)
        if self.data_source not in DATA_SOURCES:
            raise ConfigError(f"data_source {self.data_source!r}: expected one of {DATA_SOURCES}")
        if self.llm_mode not in LLM_MODES:
            raise ConfigError(f"llm_mode {self.llm_mode!r}: expected one of {LLM_MODES}")
        for name in ("history_days", "score_window_days", "wf_folds", "top_strategies", "top_models",
                     "top_ensembles", "wf_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.score_window_days > self.history_days:
            raise ConfigError("score_window_days cannot exceed history_days")
        if not (0 <= self.fee < 0.05 and 0 <= self.slippage < 0.05):
            raise ConfigError("fee and slippage are fractions, e.g. 0.0006 for 0.06%")
        if self.llm_budget_usd < 0:
            raise ConfigError("llm_budget_usd cannot be negative")

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
