"""Run knobs of the ML step, as one frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass

from blofin_pipeline.costs import DEFAULT_FEE
from blofin_pipeline.exceptions import ConfigError
from blofin_pipeline.ml.labels import DEFAULT_BAND

MODEL_TYPES = ("logreg", "extra_trees", "hist_gb", "lgbm")


@dataclass(frozen=True)
class MLConfig:
    """Settings of :func:`blofin_pipeline.ml.pipeline.train_and_evaluate`.

    horizon: label horizon in bars (also the purge gap). band: no-trade band on the
    forward log move (default: round-trip fee). threshold: predicted P(up) at or above
    it goes long, at or below ``1 - threshold`` goes short, flat in between.
    max_rows: most recent usable rows per symbol kept for training and testing.
    ensemble_size: members of each ensemble, the best models of the symbol by OOS F1.
    tree_estimators / boost_rounds: size of the forest and of the boosted models.
    """

    horizon: int = 1
    band: float = DEFAULT_BAND
    n_splits: int = 4
    models: tuple[str, ...] = MODEL_TYPES
    threshold: float = 0.55
    fee: float = DEFAULT_FEE
    slippage: float = 0.0
    max_rows: int = 20_000
    ensemble_size: int = 3
    seed: int = 0
    n_jobs: int = 2
    tree_estimators: int = 100
    boost_rounds: int = 200
    timeframe: str | None = None
    symbols: tuple[str, ...] | None = None  # None: every symbol given

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"ML horizon must be >= 1 bar, got {self.horizon!r}")
        if self.band < 0:
            raise ConfigError(f"ML no-trade band must be >= 0, got {self.band!r}")
        if self.n_splits < 2:
            raise ConfigError(f"ML n_splits must be >= 2 (stacking needs an earlier fold), got {self.n_splits!r}")
        unknown = [m for m in self.models if m not in MODEL_TYPES]
        if unknown or not self.models:
            raise ConfigError(f"ML models {list(self.models)!r}: unknown {unknown}; choose from {MODEL_TYPES}")
        if not 0.5 <= self.threshold < 1.0:
            raise ConfigError(f"ML threshold must be in [0.5, 1), got {self.threshold!r}")
        if self.fee < 0 or self.slippage < 0:
            raise ConfigError(f"ML fee and slippage must be >= 0, got {self.fee!r}, {self.slippage!r}")
        if self.max_rows < 500:
            raise ConfigError(f"ML max_rows must be >= 500, got {self.max_rows!r}")
        if self.ensemble_size < 2:
            raise ConfigError(f"ML ensemble_size must be >= 2, got {self.ensemble_size!r}")
        if self.n_jobs < 1 or self.tree_estimators < 1 or self.boost_rounds < 1:
            raise ConfigError("ML n_jobs, tree_estimators and boost_rounds must be >= 1")
