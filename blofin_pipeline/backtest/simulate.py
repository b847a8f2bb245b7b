"""The simulation kernel behind `engine`: cost rates, one pass over bars for a block of
position rows, and the metrics of each row from the equity at hand.

`engine.run_backtest` runs one row, `engine.run_backtest_grid` many; both share these
functions so a grid column and a single backtest agree exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from blofin_pipeline.exceptions import BacktestError

FEE_MODELS = ("linear", "vectorbt")


# Positions a hair outside [-1, 1] (float noise from a strategy's arithmetic) are clipped.
POSITION_TOLERANCE = 1e-9


# Budget per (columns x bars) float64 work array in the grid path: three such arrays (and a
# bool mask) are reused from chunk to chunk; small enough to stay in the CPU cache.
GRID_CHUNK_ELEMENTS = 1_000_000


FeeModel = Literal["linear", "vectorbt"]


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


def validate_close(close: np.ndarray, what: str = "close") -> None:
    if close.ndim != 1:
        raise BacktestError(f"{what} must be one-dimensional, got shape {close.shape}")
    if close.size == 0:
        raise BacktestError(f"{what} is empty")
    lo, hi = close.min(), close.max()  # NaN propagates into both
    if not (lo > 0 and hi < np.inf):
        raise BacktestError(f"{what} must be finite and positive")


def validate_positions(pos: np.ndarray, what: str = "positions") -> np.ndarray:
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


def bar_returns(close: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
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
class Core:
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
class Buffers:
    """Work arrays reused from chunk to chunk (fresh large arrays cost page faults each time)."""

    ret: np.ndarray
    equity: np.ndarray
    scratch: np.ndarray
    changed: np.ndarray

    @classmethod
    def allocate(cls, rows: int, n: int) -> Buffers:
        return cls(np.empty((rows, n)), np.empty((rows, n)), np.empty((rows, n)), np.empty((rows, n), dtype=bool))

    def view(self, rows: int) -> Buffers:
        return Buffers(self.ret[:rows], self.equity[:rows], self.scratch[:rows], self.changed[:rows])


def simulate_block(r: np.ndarray, pos: np.ndarray, rate_buy: float, rate_sell: float,
              buffers: Buffers | None = None) -> Core:
    """Simulate positions ``pos`` (rows x bars, C-contiguous, any real dtype) on bar returns ``r``.

    Integer or float32 positions are used as they are (cast exactly to float64 on the fly),
    so a grid of -1/0/1 signals never needs a float64 copy of itself. With ``buffers`` the
    returned ``returns`` and ``equity`` live in them (valid until the next call).
    """
    rows, n = pos.shape
    if buffers is None:
        buffers = Buffers.allocate(rows, n)
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
    return Core(
        returns=ret, equity=equity, trade_row=e_row, entry_bar=e_bar, exit_bar=x_bar,
        trade_size=pos[e_row, e_bar].astype(np.float64), trade_return=trade_return,
        trade_start_equity=start_eq, trade_end_equity=end_eq, trade_open=x_open,
        fees=fees, turnover_sum=turnover_sum,
    )


GRID_METRICS = (
    "total_return", "cagr", "sharpe", "sortino", "volatility", "max_drawdown", "calmar",
    "win_rate", "profit_factor", "n_trades", "exposure", "turnover", "fees_paid",
)


def check_grid_block(block: np.ndarray, j0: int, j1: int) -> None:
    what = f"positions columns {j0}..{j1 - 1}"
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise BacktestError(f"{what} contain NaN or infinite values")
    lo, hi = block.min(), block.max()
    if lo < -1 or hi > 1:
        raise BacktestError(f"{what} must lie in [-1, 1], got range [{lo}, {hi}]")


def grid_chunk(r: np.ndarray, block: np.ndarray, rate_buy: float, rate_sell: float,
                ppy: float, out: dict[str, np.ndarray], j0: int, buffers: Buffers) -> None:
    core = simulate_block(r, block, rate_buy, rate_sell, buffers)
    metrics_into(core, block, ppy, out, j0, buffers.scratch)


def metrics_into(core: Core, block: np.ndarray, ppy: float, out: dict[str, np.ndarray], j0: int,
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
