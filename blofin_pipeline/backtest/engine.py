"""Vectorized, exact backtester: target positions in [-1, 1] -> returns, equity, trades, metrics.

Conventions (DESIGN.md):

* The position decided at bar t (at its close) is held over bar t+1, so it earns
  ``close[t] -> close[t+1]``. The position is a fraction of equity, long > 0, short < 0,
  and is kept at that fraction from bar to bar (the usual vectorized convention: the
  per-bar strategy return is ``position[t-1] * (close[t] / close[t-1] - 1)``).
* Every change of position is a trade at the close of the bar where it is decided; it
  costs a fraction of equity proportional to ``|delta position|``. A flip from long to
  short (or back) is two legs: close the old position, then open the new one with the
  equity left after the first leg's cost. Costs are compounded multiplicatively::

      equity[t] = equity[t-1] * (1 + position[t-1] * r[t]) * prod_legs(1 - rate_leg * |leg|)

  floored at zero (a short through a bar that more than doubles the price is a wipe-out).

* ``fee_model="linear"`` (default): ``rate_leg = fee + slippage`` for buys and sells.
* ``fee_model="vectorbt"``: vectorbt's ``Portfolio.from_signals`` cash convention. A buy
  pays ``price * (1 + slippage)`` and the fee on top, so going all-in turns cash C into
  ``C / (price * (1 + slippage) * (1 + fee))`` units: ``rate_buy = 1 - 1 / ((1 + fee) *
  (1 + slippage))``. A sale receives ``price * (1 - slippage)`` minus the fee:
  ``rate_sell = 1 - (1 - fee) * (1 - slippage)``. With long-only 0/1 positions the final
  equity equals vectorbt's final portfolio value (same fees, slippage, all-cash entries,
  sell-all exits) to floating-point rounding.

A trade is a maximal run of bars with a non-zero position of one sign; it opens at the
bar where that run starts and closes at the bar where the position returns to zero or
flips (a trade still open at the last bar is marked to the last close, ``is_open``). Its
return is the equity growth from just before its entry cost to just after its exit cost.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.backtest.simulate import (
    GRID_CHUNK_ELEMENTS,
    GRID_METRICS,
    Buffers,
    Core,
    FeeModel,
    bar_returns,
    check_grid_block,
    cost_rates,
    grid_chunk,
    metrics_into,
    simulate_block,
    validate_close,
    validate_positions,
)
from blofin_pipeline.costs import DEFAULT_FEE
from blofin_pipeline.exceptions import BacktestError, ConfigError
from blofin_pipeline.timeframes import TIMEFRAME_MINUTES
from blofin_pipeline.timeframes import periods_per_year as tf_periods_per_year

log = logging.getLogger(__name__)


TRADE_COLUMNS = [
    "entry_time", "exit_time", "side", "size", "entry_price", "exit_price",
    "pnl", "return", "bars_held", "is_open",
]


@dataclass(frozen=True)
class BacktestResult:
    """Outcome of :func:`run_backtest`; ``returns`` are per-bar simple strategy returns."""

    equity: pd.Series
    returns: pd.Series
    positions: pd.Series
    trades: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    periods_per_year: float = float("nan")


def infer_periods_per_year(index: pd.DatetimeIndex, timeframe: str | None = None) -> float:
    """Bars per 365-day year, from the timeframe if given, else from the index's typical spacing."""
    if timeframe is not None:
        try:
            return tf_periods_per_year(timeframe)
        except ConfigError as err:
            raise BacktestError(f"cannot annualise: {err}") from err
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise BacktestError("cannot infer the bar size: need a DatetimeIndex of at least 2 bars "
                            "or an explicit timeframe")
    head = index[: min(len(index), 1001)]
    step = pd.Series(head[1:] - head[:-1]).median()
    minutes = step.total_seconds() / 60.0
    if not minutes > 0:
        raise BacktestError(f"cannot infer the bar size from an index spaced {step}")
    for name, tf_minutes in TIMEFRAME_MINUTES.items():
        if abs(tf_minutes - minutes) < 1e-9:
            return tf_periods_per_year(name)
    return 365 * 1440 / minutes


def positions_array(candles: pd.DataFrame, positions: pd.Series | np.ndarray) -> np.ndarray:
    """Positions as validated float64 on the candles' bars (what `run_backtest` simulates)."""
    n = len(candles)
    if isinstance(positions, pd.DataFrame):
        raise BacktestError("positions must be a Series or a 1-D array, not a DataFrame")
    if isinstance(positions, pd.Series):
        if len(positions) != n or not positions.index.equals(candles.index):
            raise BacktestError(
                f"positions index is misaligned with the candles ({len(positions)} positions, "
                f"{n} candles): it must equal the candles' index"
            )
        values = positions.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = np.asarray(positions, dtype=np.float64)
        if values.ndim != 1 or values.size != n:
            raise BacktestError(f"positions have shape {values.shape}, expected ({n},) like the candles")
    return validate_positions(values)


def run_backtest(
    candles: pd.DataFrame,
    positions: pd.Series | np.ndarray,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    *,
    timeframe: str | None = None,
    initial_equity: float = 1.0,
    fee_model: FeeModel = "linear",
) -> BacktestResult:
    """Backtest target positions (decided at each bar's close, held over the next bar).

    ``candles`` needs a ``close`` column; ``positions`` is a Series on the candles' index (or
    an array of the same length) of fractions of equity in [-1, 1]. ``fee`` and ``slippage``
    are fractions of the traded notional charged on every change of position; see the module
    docstring for the compounding convention and ``fee_model="vectorbt"``. Annualisation uses
    365 days and the bar size (``timeframe`` such as ``"1H"``, else inferred from the index).
    Metrics: total_return, cagr, sharpe, sortino, volatility, max_drawdown, calmar, win_rate,
    profit_factor, n_trades (including a trade still open at the end, marked to the last
    close), exposure (fraction of bars with a position), turnover (sum |delta position| per
    year), fees_paid (in units of ``initial_equity``).
    """
    if "close" not in candles.columns:
        raise BacktestError("candles have no 'close' column")
    if not (math.isfinite(initial_equity) and initial_equity > 0):
        raise BacktestError(f"initial_equity must be positive, got {initial_equity!r}")
    close = candles["close"].to_numpy(dtype=np.float64)
    validate_close(close, "candles close")
    pos = positions_array(candles, positions)
    rate_buy, rate_sell = cost_rates(fee, slippage, fee_model)
    ppy = infer_periods_per_year(candles.index, timeframe) if len(candles) > 1 or timeframe \
        else float("nan")

    core, metrics = simulate_one(close, pos, rate_buy, rate_sell, ppy)
    index = candles.index
    ret = core.returns[0]
    equity = core.equity[0] * initial_equity if initial_equity != 1 else core.equity[0]
    trades = _trades_frame(core, index, close, initial_equity)
    metrics["fees_paid"] = float(core.fees[0] * initial_equity)
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity", copy=False),
        returns=pd.Series(ret, index=index, name="returns", copy=False),
        positions=pd.Series(pos, index=index, name="position", copy=False),
        trades=trades,
        metrics=metrics,
        periods_per_year=ppy,
    )


def simulate_one(close: np.ndarray, pos: np.ndarray, rate_buy: float, rate_sell: float, ppy: float
                 ) -> tuple[Core, dict[str, float]]:
    """`run_backtest` without pandas: one row of validated positions on validated closes,
    simulated (equity starting at 1), with its metrics (``ppy`` NaN: those of a single bar)."""
    buffers = Buffers.allocate(1, close.size)
    # The bar returns are only needed by the simulation: they borrow the metrics' scratch row.
    r = bar_returns(close, out=buffers.scratch[0])
    core = simulate_block(r, pos[None, :], rate_buy, rate_sell, buffers)
    if math.isnan(ppy):
        return core, _degenerate_metrics(core.returns[0], pos, core)
    out = {name: np.full(1, np.nan) for name in GRID_METRICS}
    metrics_into(core, pos[None, :], ppy, out, 0, buffers.scratch)
    metrics = {name: float(values[0]) for name, values in out.items()}
    metrics["n_trades"] = int(core.entry_bar.size)
    metrics["fees_paid"] = float(core.fees[0])
    return core, metrics


def _trades_frame(core: Core, index: pd.DatetimeIndex, close: np.ndarray, initial_equity: float) -> pd.DataFrame:
    """One row per trade of a single simulated row (see the module docstring)."""
    e_bar, x_bar = core.entry_bar, core.exit_bar
    return pd.DataFrame({
        "entry_time": index[e_bar],
        "exit_time": index[x_bar],
        "side": np.where(core.trade_size > 0, "long", "short"),
        "size": core.trade_size,
        "entry_price": close[e_bar],
        "exit_price": close[x_bar],
        "pnl": (core.trade_end_equity - core.trade_start_equity) * initial_equity,
        "return": core.trade_return,
        "bars_held": (x_bar - e_bar).astype(np.int64),
        "is_open": core.trade_open,
    }, columns=TRADE_COLUMNS)


def _degenerate_metrics(ret: np.ndarray, pos: np.ndarray, core: Core) -> dict[str, float]:
    nan = float("nan")
    return {
        "total_return": float(core.equity[0, -1] - 1.0), "cagr": nan, "sharpe": nan,
        "sortino": nan, "volatility": nan, "max_drawdown": m.max_drawdown(ret), "calmar": nan,
        "win_rate": m.win_rate(core.trade_return), "profit_factor": nan,
        "n_trades": int(core.entry_bar.size), "exposure": m.exposure(pos), "turnover": nan,
        "fees_paid": float(core.fees[0]),
    }


def run_backtest_grid(
    close: np.ndarray,
    positions: np.ndarray,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    periods_per_year: float | None = None,
    *,
    timeframe: str | None = None,
    fee_model: FeeModel = "linear",
    chunk_elements: int = GRID_CHUNK_ELEMENTS,
) -> dict[str, np.ndarray]:
    """Metrics of many position columns on one price series: {metric: array of n_combos}.

    ``positions`` is (n_bars x n_combos), any numeric dtype (int8 or float32 keeps a large
    grid small); each column is backtested exactly as :func:`run_backtest` would (same
    conventions and metric definitions, ``initial_equity=1``). Columns are processed in
    chunks of about ``chunk_elements`` values so peak memory does not grow with the grid.
    Give ``periods_per_year`` or ``timeframe``.
    """
    close = np.asarray(close, dtype=np.float64)
    validate_close(close)
    positions = np.asarray(positions)
    if positions.ndim == 1:
        positions = positions[:, None]
    if positions.ndim != 2 or positions.shape[0] != close.size:
        raise BacktestError(f"positions have shape {positions.shape}, expected ({close.size}, n_combos)")
    if periods_per_year is None:
        if timeframe is None:
            raise BacktestError("run_backtest_grid needs periods_per_year or timeframe")
        periods_per_year = infer_periods_per_year(pd.DatetimeIndex([]), timeframe)
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise BacktestError(f"periods_per_year must be positive, got {periods_per_year!r}")
    if chunk_elements < 1:
        raise BacktestError(f"chunk_elements must be positive, got {chunk_elements!r}")
    rate_buy, rate_sell = cost_rates(fee, slippage, fee_model)

    n, k = positions.shape
    if positions.dtype.kind not in "biuf":
        raise BacktestError(f"positions must be numeric, got dtype {positions.dtype}")
    if positions.dtype.kind == "f" and positions.dtype.itemsize > 8:
        positions = positions.astype(np.float64)
    out = {name: np.full(k, np.nan) for name in GRID_METRICS}
    r = bar_returns(close)
    step = min(k, max(1, chunk_elements // n))
    buffers = Buffers.allocate(step, n)
    for j0 in range(0, k, step):
        j1 = min(k, j0 + step)
        block = np.ascontiguousarray(positions[:, j0:j1].T)
        if block.dtype == np.bool_:
            block = block.view(np.uint8)
        check_grid_block(block, j0, j1)
        grid_chunk(r, block, rate_buy, rate_sell, ppy, out, j0, buffers.view(j1 - j0))
    return out


