"""Final equity agrees with vectorbt's Portfolio.from_signals (fee_model="vectorbt").

vectorbt is a benchmark-only peer. It is used in-process when importable; otherwise the
vectorbt side runs in the bench venv (/work/main/.venv-bench, see bench/README.md) through a
subprocess; without either the vectorbt test is skipped with a message. The plain-Python
reference loop below pins the same cash/fee convention without vectorbt.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blofin_pipeline.backtest import run_backtest
from tests.backtest.helpers import make_candles, random_walk

REL_TOL = 1e-9
REPO = Path(__file__).resolve().parents[2]
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
CASES = [(0.0006, 0.0), (0.001, 0.0005), (0.0, 0.0), (0.0025, 0.001)]


def vectorbt_style_final_value(close: np.ndarray, pos: np.ndarray, fee: float, slippage: float,
                               cash: float = 1.0) -> float:
    """Plain loop of vectorbt's from_signals cash accounting: all-cash buys, sell-all exits."""
    units = 0.0
    for t in range(close.size):
        held = units > 0
        if pos[t] == 1 and not held:
            buy_price = close[t] * (1 + slippage)
            units = cash / (buy_price * (1 + fee))
            cash = 0.0
        elif pos[t] == 0 and held:
            sell_value = units * close[t] * (1 - slippage)
            cash += sell_value - sell_value * fee
            units = 0.0
    return cash + units * close[-1]


def long_only_signals(n: int, seed: int, hold: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.repeat(rng.integers(0, 2, n // hold + 1), hold)[:n].astype(np.float64)


@pytest.mark.parametrize("fee, slippage", CASES)
def test_engine_matches_reference_loop(fee, slippage):
    close = random_walk(5000, seed=11)
    pos = long_only_signals(close.size, seed=12)
    ours = run_backtest(make_candles(close), pos, fee, slippage, fee_model="vectorbt")
    expected = vectorbt_style_final_value(close, pos, fee, slippage)
    assert ours.equity.iloc[-1] == pytest.approx(expected, rel=REL_TOL)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    hold=st.integers(1, 30),
    fee=st.floats(0.0, 0.01),
    slippage=st.floats(0.0, 0.01),
)
def test_engine_matches_reference_loop_property(seed, hold, fee, slippage):
    close = random_walk(400, seed=seed, vol=0.02)
    pos = long_only_signals(close.size, seed=seed + 1, hold=hold)
    ours = run_backtest(make_candles(close), pos, fee, slippage, fee_model="vectorbt")
    assert ours.equity.iloc[-1] == pytest.approx(
        vectorbt_style_final_value(close, pos, fee, slippage), rel=REL_TOL)


# Runs both in-process (when vectorbt is importable) and in the bench venv (as a script).
_VBT_SOURCE = r"""
import json
import sys

import numpy as np


def final_values(close, pos, cases):
    import vectorbt as vbt
    prev = np.concatenate([[0.0], pos[:-1]])
    entries, exits = (pos == 1) & (prev == 0), (pos == 0) & (prev == 1)
    out = []
    for fee, slippage in cases:
        pf = vbt.Portfolio.from_signals(close, entries, exits, fees=fee, slippage=slippage,
                                        init_cash=1.0, freq="1min")
        out.append([float(pf.final_value()), int(pf.trades.count())])
    return out


if __name__ == "__main__":
    data = np.load(sys.argv[1])
    print(json.dumps(final_values(data["close"], data["pos"], json.loads(sys.argv[2]))))
"""


def _vectorbt_final_values(close: np.ndarray, pos: np.ndarray, tmp_path: Path) -> list[list[float]]:
    if importlib.util.find_spec("vectorbt") is not None:
        namespace: dict = {"__name__": "vbt_side"}
        exec(compile(_VBT_SOURCE, "vbt_side", "exec"), namespace)
        return namespace["final_values"](close, pos, CASES)
    if not BENCH_PYTHON.exists():
        pytest.skip(f"vectorbt is not importable here and the bench venv {BENCH_PYTHON} is absent; "
                    "create it from bench/requirements.txt to run the vectorbt agreement test")
    data = tmp_path / "data.npz"
    np.savez(data, close=close, pos=pos)
    proc = subprocess.run([str(BENCH_PYTHON), "-c", _VBT_SOURCE, str(data), json.dumps(CASES)],
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"vectorbt side failed in {BENCH_PYTHON}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_final_equity_agrees_with_vectorbt_from_signals(tmp_path):
    close = random_walk(50_000, seed=21, vol=0.002)
    pos = long_only_signals(close.size, seed=22, hold=40)
    results = _vectorbt_final_values(close, pos, tmp_path)
    candles = make_candles(close, "1min")
    for (fee, slippage), (vbt_value, vbt_trades) in zip(CASES, results, strict=True):
        ours = run_backtest(candles, pos, fee, slippage, fee_model="vectorbt")
        assert ours.equity.iloc[-1] == pytest.approx(vbt_value, rel=REL_TOL), (fee, slippage)
        assert ours.metrics["n_trades"] == vbt_trades
