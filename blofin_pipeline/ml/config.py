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
    wf_folds / train_bars / train_frac / anchored: the walk-forward fold geometry, the
    strategies' (``backtest.walkforward.fold_bounds`` over the same candles; initial training
    ``train_bars`` bars, else the ``train_frac`` share): models are fitted on a fold's
    training part and judged on its test part only.
    ensemble_size: members of each ensemble, the best models by inner-validation F1.
    tree_estimators / boost_rounds / learning_rate: size of the forest and of the boosted
    models, and the boosted models' shrinkage (fewer rounds need a larger step).
    """

    horizon: int = 1
    band: float = DEFAULT_BAND
    wf_folds: int = 4
    train_frac: float = 0.5
    train_bars: int | None = None
    anchored: bool = False
    models: tuple[str, ...] = MODEL_TYPES
    threshold: float = 0.55
    fee: float = DEFAULT_FEE
    slippage: float = 0.0
    ensemble_size: int = 3
    seed: int = 0
    n_jobs: int = 2
    tree_estimators: int = 100
    boost_rounds: int = 200
    learning_rate: float = 0.05
    timeframe: str | None = None
    symbols: tuple[str, ...] | None = None  # None: every symbol given

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"ML horizon must be >= 1 bar, got {self.horizon!r}")
        if self.band < 0:
            raise ConfigError(f"ML no-trade band must be >= 0, got {self.band!r}")
        if self.wf_folds < 1 or not 0 < self.train_frac < 1:
            raise ConfigError(f"ML wf_folds must be >= 1 and train_frac in (0, 1), got {self.wf_folds!r},"
                              f" {self.train_frac!r}")
        if self.train_bars is not None and self.train_bars < 1:
            raise ConfigError(f"ML train_bars must be >= 1, got {self.train_bars!r}")
        unknown = [m for m in self.models if m not in MODEL_TYPES]
        if unknown or not self.models:
            raise ConfigError(f"ML models {list(self.models)!r}: unknown {unknown}; choose from {MODEL_TYPES}")
        if not 0.5 <= self.threshold < 1.0:
            raise ConfigError(f"ML threshold must be in [0.5, 1), got {self.threshold!r}")
        if self.fee < 0 or self.slippage < 0:
            raise ConfigError(f"ML fee and slippage must be >= 0, got {self.fee!r}, {self.slippage!r}")
        if self.ensemble_size < 2:
            raise ConfigError(f"ML ensemble_size must be >= 2, got {self.ensemble_size!r}")
        if self.n_jobs < 1 or self.tree_estimators < 1 or self.boost_rounds < 1:
            raise ConfigError("ML n_jobs, tree_estimators and boost_rounds must be >= 1")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"ML learning_rate must be in (0, 1], got {self.learning_rate!r}")

    def train_len(self, n_bars: int) -> int:
        """The initial training span in bars for a series of ``n_bars``."""
        return self.train_bars if self.train_bars is not None else int(n_bars * self.train_frac)
