"""Keep the best ML models and ensembles, archive the rest with a reason.

Models are ranked by out-of-sample F1, ensembles by out-of-sample accuracy (ties: the
other metric, then the name, so the order is stable); a NaN metric ranks last. The
ranker of the daily run persists the outcome; this module only decides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from blofin_pipeline.exceptions import ConfigError

DEFAULT_KEEP_MODELS = 5
DEFAULT_KEEP_ENSEMBLES = 3


@dataclass(frozen=True)
class MLRanking:
    """Copies of the rows with ``rank`` (1 = best) and, for archived ones, ``reason``."""

    kept_models: list[dict[str, Any]] = field(default_factory=list)
    archived_models: list[dict[str, Any]] = field(default_factory=list)
    kept_ensembles: list[dict[str, Any]] = field(default_factory=list)
    archived_ensembles: list[dict[str, Any]] = field(default_factory=list)


def _score(value: Any) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else -math.inf


def _split(rows: list[dict[str, Any]], metric: str, tie: str, name_key: str, keep: int, what: str
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ordered = sorted(rows, key=lambda r: (-_score(r[metric]), -_score(r[tie]), r[name_key]))
    kept, archived = [], []
    for rank, row in enumerate(ordered, start=1):
        out = {**row, "rank": rank}
        if rank <= keep:
            kept.append(out)
        elif not math.isfinite(_score(row[metric])):
            archived.append({**out, "reason": f"{what} has no out-of-sample {metric}"})
        else:
            archived.append({**out, "reason": f"rank {rank} by out-of-sample {metric} ({row[metric]:.4f}),"
                                              f" outside the top {keep}"})
    return kept, archived


def rank_ml_results(
    models: list[dict[str, Any]],
    ensembles: list[dict[str, Any]],
    *,
    keep_models: int = DEFAULT_KEEP_MODELS,
    keep_ensembles: int = DEFAULT_KEEP_ENSEMBLES,
) -> MLRanking:
    """Top ``keep_models`` models by F1 and top ``keep_ensembles`` ensembles by accuracy."""
    if keep_models < 0 or keep_ensembles < 0:
        raise ConfigError(f"keep counts must be >= 0, got {keep_models!r}, {keep_ensembles!r}")
    kept_m, archived_m = _split(models, "f1", "accuracy", "model_name", keep_models, "model")
    kept_e, archived_e = _split(ensembles, "accuracy", "f1", "ensemble_name", keep_ensembles, "ensemble")
    return MLRanking(kept_m, archived_m, kept_e, archived_e)
