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
from typing import Literal

import numpy as np
import pandas as pd

from blofin_pipeline.backtest import metrics as m
from blofin_pipeline.costs import DEFAULT_FEE
from blofin_pipeline.exceptions import BacktestError, ConfigError
from blofin_pipeline.timeframes import TIMEFRAME_MINUTES
from blofin_pipeline.timeframes import periods_per_year as tf_periods_per_year

log = logging.getLogger(__name__)

FEE_MODELS = ("linear", "vectorbt")
# Positions a hair outside [-1, 1] (float noise from a strategy's arithmetic) are clipped.
POSITION_TOLERANCE = 1e-9
# Budget per (columns x bars) float64 work array in the grid path: three such arrays (and a
# bool mask) are reused from chunk to chunk; small enough to stay in the CPU cache.
GRID_CHUNK_ELEMENTS = 1_000_000

FeeModel = Literal["linear", "vectorbt"]

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


def cost_rates(fee: float, slippage: float, fee_model: FeeModel = "linear") -> tuple[float, float]:
    """(rate_buy, rate_sell): fraction of the traded notional lost on a buy and on a sell."""
    for label, value in (("fee", fee), ("slippage", slippage)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1):
            raise BacktestError(f"{label} must be a number in [0, 1), got {value!r}")
    if fee_model == "linear":
        rate = float(fee) + float(slippage)
        return rate, rate
    if fee_model == "vectorbt":
        return 1.0 - 1.0 / ((1.0 + fee) * (1.0 + slippage)), 1.0 - (1.0 - fee) * (1.0 - slippage)
    raise BacktestError(f"unknown fee_model {fee_model!r}; expected one of {', '.join(FEE_MODELS)}")


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


def _validate_close(close: np.ndarray, what: str = "close") -> None:
    if close.ndim != 1:
        raise BacktestError(f"{what} must be one-dimensional, got shape {close.shape}")
    if close.size == 0:
        raise BacktestError(f"{what} is empty")
    lo, hi = close.min(), close.max()  # NaN propagates into both
    if not (lo > 0 and hi < np.inf):
        raise BacktestError(f"{what} must be finite and positive")


def _validate_positions(pos: np.ndarray, what: str = "positions") -> np.ndarray:
    """Return float64 positions in [-1, 1]; BacktestError for NaN/inf or out of range."""
    pos = np.asarray(pos, dtype=np.float64)
    lo, hi = pos.min(initial=0.0), pos.max(initial=0.0)  # NaN propagates into both
    if np.isnan(lo) or np.isnan(hi) or np.isinf(lo) or np.isinf(hi):
        raise BacktestError(f"{what} contain NaN or infinite values")
    if lo < -1 - POSITION_TOLERANCE or hi > 1 + POSITION_TOLERANCE:
        raise BacktestError(f"{what} must lie in [-1, 1], got range [{lo}, {hi}]")
    if lo < -1 or hi > 1:
        pos = np.clip(pos, -1.0, 1.0)
    return pos


def _bar_returns(close: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    r = np.empty_like(close) if out is None else out
    r[0] = 0.0
    np.divide(close[1:], close[:-1], out=r[1:])
    r[1:] -= 1.0
    return r


def _leg_factors(prev: np.ndarray, new: np.ndarray, rate_buy: float, rate_sell: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cost factors of a position change, split (old trade's part, new trade's entry part).

    The old part covers closing/reducing/resizing the position held before; the entry part
    is the cost of opening a new trade (from flat, or the second leg of a flip); it is 1
    where no new trade opens.
    """
    delta = new - prev
    flip = prev * new < 0
    opens = (new != 0) & ((prev == 0) | flip)
    old_factor = 1.0 - np.where(delta > 0, rate_buy, rate_sell) * np.abs(delta)
    entry_factor = np.ones_like(delta)
    # From flat, the whole change opens the new trade.
    from_flat = opens & ~flip
    entry_factor[from_flat] = old_factor[from_flat]
    old_factor[from_flat] = 1.0
    if flip.any():
        a, b = prev[flip], new[flip]
        old_factor[flip] = 1.0 - np.where(a < 0, rate_buy, rate_sell) * np.abs(a)
        entry_factor[flip] = 1.0 - np.where(b > 0, rate_buy, rate_sell) * np.abs(b)
    return old_factor, entry_factor


@dataclass
class _Core:
    """Per-row results of the simulation of a (rows x bars) block of positions."""

    returns: np.ndarray          # (rows, bars) strategy returns
    equity: np.ndarray           # (rows, bars) equity, starting value 1
    trade_row: np.ndarray        # (trades,) row of each trade
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    trade_size: np.ndarray
    trade_return: np.ndarray
    trade_start_equity: np.ndarray
    trade_end_equity: np.ndarray
    trade_open: np.ndarray
    fees: np.ndarray             # (rows,) costs paid, in units of the initial equity
    turnover_sum: np.ndarray     # (rows,) sum |delta position|


@dataclass
class _Buffers:
    """Work arrays reused from chunk to chunk (fresh large arrays cost page faults each time)."""

    ret: np.ndarray
    equity: np.ndarray
    scratch: np.ndarray
    changed: np.ndarray

    @classmethod
    def allocate(cls, rows: int, n: int) -> _Buffers:
        return cls(np.empty((rows, n)), np.empty((rows, n)), np.empty((rows, n)), np.empty((rows, n), dtype=bool))

    def view(self, rows: int) -> _Buffers:
        return _Buffers(self.ret[:rows], self.equity[:rows], self.scratch[:rows], self.changed[:rows])


def _simulate(r: np.ndarray, pos: np.ndarray, rate_buy: float, rate_sell: float,
              buffers: _Buffers | None = None) -> _Core:
    """Simulate positions ``pos`` (rows x bars, C-contiguous, any real dtype) on bar returns ``r``.

    Integer or float32 positions are used as they are (cast exactly to float64 on the fly),
    so a grid of -1/0/1 signals never needs a float64 copy of itself. With ``buffers`` the
    returned ``returns`` and ``equity`` live in them (valid until the next call).
    """
    rows, n = pos.shape
    if buffers is None:
        buffers = _Buffers.allocate(rows, n)
    ret = buffers.ret
    ret[:, 0] = 0.0
    np.multiply(pos[:, :-1], r[1:], out=ret[:, 1:])

    changed = buffers.changed
    np.not_equal(pos[:, 1:], pos[:, :-1], out=changed[:, 1:])
    np.not_equal(pos[:, 0], 0, out=changed[:, 0])
    flat_idx = np.flatnonzero(changed)
    crow, cbar = np.divmod(flat_idx, n)
    new = pos[crow, cbar].astype(np.float64)
    prev = np.where(cbar > 0, pos[crow, np.maximum(cbar - 1, 0)], 0).astype(np.float64)
    old_f, entry_f = _leg_factors(prev, new, rate_buy, rate_sell)
    cost_f = old_f * entry_f
    ret[crow, cbar] = (1.0 + ret[crow, cbar]) * cost_f - 1.0
    # A short through a >100 % bar would lose more than everything: equity floors at zero.
    if rows * n and ret.min() < -1.0:
        np.maximum(ret, -1.0, out=ret)

    equity = np.add(ret, 1.0, out=buffers.equity)
    np.cumprod(equity, axis=1, out=equity)

    eq_at_change = equity[crow, cbar]
    fees = np.bincount(crow, weights=eq_at_change * (1.0 - cost_f) / cost_f, minlength=rows)
    turnover_sum = np.bincount(crow, weights=np.abs(new - prev), minlength=rows)

    # Trades: entries where a trade opens, exits where the held trade closes (to flat or flip).
    flip = prev * new < 0
    opens = (new != 0) & ((prev == 0) | flip)
    closes = (prev != 0) & ((new == 0) | flip)
    e_row, e_bar = crow[opens], cbar[opens]
    open_rows = np.flatnonzero(pos[:, -1] != 0)
    x_row = np.concatenate([crow[closes], open_rows])
    x_bar = np.concatenate([cbar[closes], np.full(open_rows.size, n - 1, dtype=cbar.dtype)])
    x_open = np.concatenate([np.zeros(int(closes.sum()), dtype=bool), np.ones(open_rows.size, dtype=bool)])
    # At a flip bar the equity already includes the next trade's entry cost: take it out.
    end_eq = np.concatenate([eq_at_change[closes] / entry_f[closes], equity[open_rows, n - 1]])
    order = np.argsort(x_row * np.int64(n) + x_bar, kind="stable")
    x_row, x_bar, x_open, end_eq = x_row[order], x_bar[order], x_open[order], end_eq[order]
    if x_row.size != e_row.size or not np.array_equal(x_row, e_row):
        raise BacktestError("internal error: trade entries and exits do not pair up")
    start_eq = eq_at_change[opens] / entry_f[opens]
    with np.errstate(divide="ignore", invalid="ignore"):  # trades after a wipe-out: NaN
        trade_return = np.where(start_eq > 0, end_eq / start_eq - 1.0, np.nan)
    return _Core(
        returns=ret, equity=equity, trade_row=e_row, entry_bar=e_bar, exit_bar=x_bar,
        trade_size=pos[e_row, e_bar].astype(np.float64), trade_return=trade_return,
        trade_start_equity=start_eq, trade_end_equity=end_eq, trade_open=x_open,
        fees=fees, turnover_sum=turnover_sum,
    )


def _positions_array(candles: pd.DataFrame, positions: pd.Series | np.ndarray) -> np.ndarray:
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
    return _validate_positions(values)


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
    _validate_close(close, "candles close")
    pos = _positions_array(candles, positions)
    rate_buy, rate_sell = cost_rates(fee, slippage, fee_model)
    ppy = infer_periods_per_year(candles.index, timeframe) if len(candles) > 1 or timeframe \
        else float("nan")

    buffers = _Buffers.allocate(1, close.size)
    # The bar returns are only needed by the simulation: they borrow the metrics' scratch row.
    bar_returns = _bar_returns(close, out=buffers.scratch[0])
    core = _simulate(bar_returns, pos[None, :], rate_buy, rate_sell, buffers)
    index = candles.index
    ret = core.returns[0]
    equity = core.equity[0] * initial_equity if initial_equity != 1 else core.equity[0]

    e_bar, x_bar = core.entry_bar, core.exit_bar
    pnl = (core.trade_end_equity - core.trade_start_equity) * initial_equity
    trades = pd.DataFrame({
        "entry_time": index[e_bar],
        "exit_time": index[x_bar],
        "side": np.where(core.trade_size > 0, "long", "short"),
        "size": core.trade_size,
        "entry_price": close[e_bar],
        "exit_price": close[x_bar],
        "pnl": pnl,
        "return": core.trade_return,
        "bars_held": (x_bar - e_bar).astype(np.int64),
        "is_open": core.trade_open,
    }, columns=TRADE_COLUMNS)

    if math.isnan(ppy):
        metrics = _degenerate_metrics(ret, pos, core)
    else:
        out = {name: np.full(1, np.nan) for name in GRID_METRICS}
        _metrics_into(core, pos[None, :], ppy, out, 0, buffers.scratch)
        metrics = {name: float(values[0]) for name, values in out.items()}
        metrics["n_trades"] = int(e_bar.size)
        metrics["fees_paid"] = float(core.fees[0] * initial_equity)
    return BacktestResult(
        equity=pd.Series(equity, index=index, name="equity", copy=False),
        returns=pd.Series(ret, index=index, name="returns", copy=False),
        positions=pd.Series(pos, index=index, name="position", copy=False),
        trades=trades,
        metrics=metrics,
        periods_per_year=ppy,
    )


def _degenerate_metrics(ret: np.ndarray, pos: np.ndarray, core: _Core) -> dict[str, float]:
    nan = float("nan")
    return {
        "total_return": float(core.equity[0, -1] - 1.0), "cagr": nan, "sharpe": nan,
        "sortino": nan, "volatility": nan, "max_drawdown": m.max_drawdown(ret), "calmar": nan,
        "win_rate": m.win_rate(core.trade_return), "profit_factor": nan,
        "n_trades": int(core.entry_bar.size), "exposure": m.exposure(pos), "turnover": nan,
        "fees_paid": float(core.fees[0]),
    }


GRID_METRICS = (
    "total_return", "cagr", "sharpe", "sortino", "volatility", "max_drawdown", "calmar",
    "win_rate", "profit_factor", "n_trades", "exposure", "turnover", "fees_paid",
)


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
    _validate_close(close)
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
    r = _bar_returns(close)
    step = min(k, max(1, chunk_elements // n))
    buffers = _Buffers.allocate(step, n)
    for j0 in range(0, k, step):
        j1 = min(k, j0 + step)
        block = np.ascontiguousarray(positions[:, j0:j1].T)
        if block.dtype == np.bool_:
            block = block.view(np.uint8)
        _check_grid_block(block, j0, j1)
        _grid_chunk(r, block, rate_buy, rate_sell, ppy, out, j0, buffers.view(j1 - j0))
    return out


def _check_grid_block(block: np.ndarray, j0: int, j1: int) -> None:
    what = f"positions columns {j0}..{j1 - 1}"
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise BacktestError(f"{what} contain NaN or infinite values")
    lo, hi = block.min(), block.max()
    if lo < -1 or hi > 1:
        raise BacktestError(f"{what} must lie in [-1, 1], got range [{lo}, {hi}]")


def _grid_chunk(r: np.ndarray, block: np.ndarray, rate_buy: float, rate_sell: float,
                ppy: float, out: dict[str, np.ndarray], j0: int, buffers: _Buffers) -> None:
    core = _simulate(r, block, rate_buy, rate_sell, buffers)
    _metrics_into(core, block, ppy, out, j0, buffers.scratch)


def _metrics_into(core: _Core, block: np.ndarray, ppy: float, out: dict[str, np.ndarray], j0: int,
                  scratch: np.ndarray) -> None:
    """Write the metrics of each row of a simulated block into ``out[name][j0 + row]``.

    Same definitions as blofin_pipeline.backtest.metrics (pinned against empyrical), computed
    from the equity curve already at hand with as few passes over the data as possible.
    """
    rows, n = block.shape
    sl = slice(j0, j0 + rows)
    ret, equity = core.returns, core.equity

    total = equity[:, -1] - 1.0
    out["total_return"][sl] = total
    years = n / ppy
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        growth = np.where(equity[:, -1] > 0, np.power(np.maximum(equity[:, -1], 0.0), 1.0 / years) - 1.0, -1.0)
    out["cagr"][sl] = growth

    s1 = ret.sum(axis=1)
    mean = s1 / n
    if n > 1:
        # One-pass variance: per-bar returns have |mean| << std, so no cancellation to fear.
        var = np.maximum(np.einsum("ij,ij->i", ret, ret) - s1 * mean, 0.0) / (n - 1)
        std = np.sqrt(var)
        tiny = std <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
        if tiny.any():  # identical returns: exactly zero dispersion, not a rounding residue
            std[tiny & (ret.max(axis=1) == ret.min(axis=1))] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            out["sharpe"][sl] = np.where(std > 0, mean / std * np.sqrt(ppy), np.nan)
            out["volatility"][sl] = std * np.sqrt(ppy)
            down = np.minimum(ret, 0.0, out=scratch)
            dr = np.sqrt(np.einsum("ij,ij->i", down, down) / n) * np.sqrt(ppy)
            out["sortino"][sl] = np.where(dr > 0, mean * ppy / dr, np.nan)

    # Running peak with the starting equity (1) counting as a peak.
    first = equity[:, 0].copy()
    np.maximum(equity[:, 0], 1.0, out=equity[:, 0])
    peak = np.maximum.accumulate(equity, axis=1, out=scratch)
    equity[:, 0] = first
    np.divide(equity, peak, out=peak)
    mdd = np.minimum(peak.min(axis=1) - 1.0, 0.0)
    out["max_drawdown"][sl] = mdd
    with np.errstate(divide="ignore", invalid="ignore"):
        out["calmar"][sl] = np.where(mdd < 0, growth / np.abs(mdd), np.nan)

    n_trades = np.bincount(core.trade_row, minlength=rows)
    wins = np.bincount(core.trade_row, weights=(core.trade_return > 0).astype(np.float64), minlength=rows)
    pnl = core.trade_end_equity - core.trade_start_equity
    gross_profit = np.bincount(core.trade_row, weights=np.where(pnl > 0, pnl, 0.0), minlength=rows)
    gross_loss = np.bincount(core.trade_row, weights=np.where(pnl < 0, -pnl, 0.0), minlength=rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["win_rate"][sl] = np.where(n_trades > 0, wins / n_trades, np.nan)
        out["profit_factor"][sl] = np.where(
            gross_loss > 0, gross_profit / gross_loss, np.where(gross_profit > 0, np.inf, np.nan))
    out["n_trades"][sl] = n_trades
    out["exposure"][sl] = np.count_nonzero(block, axis=1) / n
    out["turnover"][sl] = core.turnover_sum * ppy / n
    out["fees_paid"][sl] = core.fees
