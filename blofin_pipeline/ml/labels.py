"""Direction labels over a horizon, with a no-trade band.

The label of bar t is the sign of the log return from close[t] to close[t+h] (the sum
of the next h bar returns), the move a position decided at bar t and held for h bars
would earn. Moves with ``|move| < band`` are smaller than the round-trip fee, so they
carry no tradable signal: they get NO label (NaN) and are left out of training and of
the classification metrics. (They are still traded through in the backtest: the model
must decide at every bar.) We chose exclusion over a neutral third class because the
models and ensembles stay binary, so probabilities, ROC AUC and the long/short
threshold keep their plain meaning.

Labels look forward by construction: the label of bar t uses bars t+1 .. t+h. The last
h bars have no label, and a model may be trained on bar i for a test starting at bar s
only if i + h < s. That purge is enforced by
:func:`blofin_pipeline.ml.validation.purged_walk_forward_splits`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.costs import DEFAULT_FEE
from blofin_pipeline.exceptions import ConfigError

DEFAULT_BAND = 2 * DEFAULT_FEE  # round trip: in and out


def forward_move(close: pd.Series, horizon: int) -> pd.Series:
    """Log return from close[t] to close[t+horizon]; NaN for the last ``horizon`` bars."""
    if horizon < 1:
        raise ConfigError(f"label horizon must be >= 1 bar, got {horizon!r}")
    log_close = np.log(close.astype(np.float64))
    return (log_close.shift(-horizon) - log_close).rename("move")


def make_labels(close: pd.Series, horizon: int = 1, band: float = DEFAULT_BAND) -> pd.DataFrame:
    """Frame with ``move`` (forward log return) and ``label`` (1.0 up, 0.0 down, NaN none).

    NaN label: the move is unknown (last ``horizon`` bars) or inside the no-trade band.
    """
    if band < 0 or not np.isfinite(band):
        raise ConfigError(f"no-trade band must be a finite number >= 0, got {band!r}")
    move = forward_move(close, horizon)
    label = pd.Series(np.nan, index=close.index, name="label")
    label[move >= band] = 1.0
    label[move <= -band] = 0.0
    if band == 0:
        label[move == 0] = np.nan  # an exactly flat move has no direction
    return pd.DataFrame({"move": move, "label": label})
