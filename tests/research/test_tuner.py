"""The tuner: underperformers, diagnosis, honest Optuna tuning, and the online mapping."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.costs import Costs
from blofin_pipeline.exceptions import LLMResponseError
from blofin_pipeline.llm.schemas import TuneProposal, TuneReply
from blofin_pipeline.market.sample import Edge, generate_candles
from blofin_pipeline.research.candidates import tuned_name
from blofin_pipeline.research.diagnosis import diagnose, pick_underperformers
from blofin_pipeline.research.holdout import split_candles
from blofin_pipeline.research.strategy_source import read_class_literals
from blofin_pipeline.research.tuner import tune, tune_strategy
from blofin_pipeline.strategies import load_strategy_source
from blofin_pipeline.strategies.runner import signal_function
from tests.fakes.llm import ScriptedCaller

START = pd.Timestamp("2024-01-01", tz="UTC")
# Cheap fees and no slippage: the planted edge must survive the costs for tuning to find it.
COSTS = Costs(fee=0.0002, slippage=0.0, timeframe="1H")

# Momentum over the last `lookback` bars. The planted edge is a lag-1 autocorrelation, so a
# long lookback (the default here) is deliberately mis-parameterised; short ones exploit it.
LAG_MOMENTUM = '''import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class LagMomentum(Strategy):
    name = "lag_momentum"
    category = "momentum"
    params = {"lookback": 120, "threshold": 0.0}
    param_space = {"lookback": (1, 150), "threshold": (0.0, 0.01)}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        move = candles["close"].pct_change(int(self.params["lookback"]))
        threshold = float(self.params["threshold"])
        signal = np.where(move > threshold, 1.0, np.where(move < -threshold, -1.0, 0.0))
        return pd.Series(signal, index=candles.index).where(move.notna(), 0.0)
'''


def _candles(symbol: str, days: int, edge: Edge | None = None) -> pd.DataFrame:
    return generate_candles(symbol, "1H", START, START + pd.Timedelta(days=days), seed=3, edge=edge)


@pytest.fixture(scope="module")
def edge_market() -> dict[str, pd.DataFrame]:
    # A strong edge over half a year: on fewer bars the held-out Sharpe is mostly noise.
    return {"BTC-USDT": _candles("BTC-USDT", 180, Edge("momentum", 0.3))}


def test_pick_underperformers_worst_first_and_unscorable_first():
    rows = [
        {"name": "a", "score": 1.0}, {"name": "a", "score": 0.5},
        {"name": "b", "score": -0.2}, {"name": "b", "score": 0.0},
        {"name": "c", "score": None},
        {"name": "d", "score": 0.3},
    ]
    picked = pick_underperformers(rows, 3)
    assert [p["name"] for p in picked] == ["c", "b", "d"]
    assert picked[1]["score"] == pytest.approx(-0.1) and picked[1]["n_rows"] == 2
    assert pick_underperformers(rows, 0) == []


def test_diagnose_flags_overtrading_on_a_high_turnover_strategy():
    candles = _candles("ETH-USDT", 40)
    flip = pd.Series(np.where(np.arange(len(candles)) % 2 == 0, 1.0, -1.0), index=candles.index)
    result = run_backtest(candles, flip, fee=0.0006, timeframe="1H")
    found = diagnose(result, candles=candles, label="ETH-USDT")
    overtrading = [f for f in found if "overtrading" in f]
    assert len(overtrading) == 1
    assert overtrading[0].startswith("ETH-USDT: overtrading and fee drag:")
    assert f"{result.metrics['n_trades']} trades in {len(candles)} bars" in overtrading[0]
    # A position held for the whole sample is not overtrading.
    hold = pd.Series(1.0, index=candles.index)
    calm = diagnose(run_backtest(candles, hold, fee=0.0006, timeframe="1H"))
    assert not any("overtrading" in f for f in calm)


def test_diagnose_drawdown_cluster_and_low_win_rate_from_pieces():
    index = pd.date_range("2024-01-01", periods=300, freq="1h", tz="UTC")
    returns = pd.Series(0.001, index=index)
    returns.iloc[100:130] = -0.01                                  # one deep, clustered drawdown
    trades = pd.DataFrame({"return": [0.05, -0.01, -0.01, -0.01, -0.01, -0.01, -0.02, 0.04]})
    metrics = {"max_drawdown": -0.26, "n_trades": 8, "win_rate": 0.25, "profit_factor": 1.1,
               "fees_paid": 0.001, "total_return": 0.05}
    found = diagnose(metrics=metrics, trades=trades, returns=returns)
    assert any(f.startswith("drawdown cluster: worst drawdown -26.0%") for f in found)
    low = [f for f in found if f.startswith("low win rate")]
    assert low and "25% of 8 trades win" in low[0] and "average win +4.50%" in low[0]
    assert not any("overtrading" in f for f in found)


def test_diagnose_regime_mismatch_when_it_earns_in_one_regime_and_loses_in_another():
    n = 600
    up = 100 * np.exp(np.cumsum(np.full(n // 2, 0.003)))
    wiggle = up[-1] + 2.0 * np.sin(np.arange(n // 2) * 2 * np.pi / 12)
    close = np.concatenate([up, wiggle])
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    candles = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                            "volume": 1.0}, index=index)
    rng = np.random.default_rng(0)
    returns = pd.Series(np.r_[0.002 + rng.normal(0, 0.001, n // 2), -0.002 + rng.normal(0, 0.001, n // 2)],
                        index=index)
    found = diagnose(metrics={}, returns=returns, candles=candles)
    mismatch = [f for f in found if f.startswith("regime mismatch")]
    assert mismatch and "loses in range" in mismatch[0] and "earns in up" in mismatch[0]


def test_tuned_name_strips_earlier_suffixes_and_stays_short():
    first = tuned_name("ema_cross", {"fast": 5})
    assert first.startswith("ema_cross_t") and len(first) == len("ema_cross_t") + 6
    assert tuned_name(first, {"fast": 6}).startswith("ema_cross_t")
    assert tuned_name(first, {"fast": 6}).count("_t") == 1
    assert len(tuned_name("x" * 80, {"a": 1})) <= 64
    assert tuned_name("ema", {"fast": 5}) != tuned_name("ema", {"fast": 6})


def test_tuning_a_misparameterised_strategy_on_a_planted_edge_improves_the_held_out_objective(edge_market):
    cls = signal_function(LAG_MOMENTUM, origin="user")  # every trial in the sandbox
    result = tune_strategy(cls, LAG_MOMENTUM, edge_market, n_trials=12, seed=0, costs=COSTS,
                           holdout=0.3, n_folds=3, version=4)
    assert result.candidate is not None
    assert result.params["lookback"] <= 10                     # found the short-horizon edge
    assert result.after_metrics["sharpe"] > result.before_metrics["sharpe"] + 2.0
    assert result.improved is True
    assert result.tuning["tuning_objective_best"] >= result.tuning["tuning_objective_default"]
    # Before/after are measured on the held-out bars only.
    _, held = split_candles(edge_market["BTC-USDT"], 0.3)
    assert result.tuning["held_out_from"] == str(held.index[0])
    cand = result.candidate
    assert cand.origin == "tuner" and cand.parent == "lag_momentum@4"
    assert cand.name.startswith("lag_momentum_t") and cand.name != "lag_momentum"
    assert read_class_literals(cand.code, "name", "params") == {"name": cand.name, "params": result.params}
    tuned_cls = load_strategy_source(cand.code)
    assert tuned_cls.params == result.params and tuned_cls.param_space == cls.param_space


def test_tuning_is_deterministic_for_a_seed(edge_market):
    cls = signal_function(LAG_MOMENTUM, origin="user")  # every trial in the sandbox
    small = {"BTC-USDT": edge_market["BTC-USDT"].iloc[:900]}
    a = tune_strategy(cls, LAG_MOMENTUM, small, n_trials=5, seed=1, costs=COSTS)
    b = tune_strategy(cls, LAG_MOMENTUM, small, n_trials=5, seed=1, costs=COSTS)
    assert a.params == b.params and a.after_metrics == b.after_metrics


def test_tune_strategies_skips_a_broken_target_and_tunes_the_rest(edge_market):
    small = {"BTC-USDT": edge_market["BTC-USDT"].iloc[:900]}
    targets = [{"name": "broken", "code": "this is not python", "version": 1},
               {"name": "lag_momentum", "code": LAG_MOMENTUM, "version": 2}]
    results = tune(targets, small, n_trials=3, seed=0, costs=COSTS)
    assert [r.strategy for r in results] == ["lag_momentum"]


def test_online_tuning_maps_proposals_to_candidates_with_parent_links(edge_market):
    small = {"BTC-USDT": edge_market["BTC-USDT"].iloc[:900]}
    new_code = LAG_MOMENTUM.replace("candles[\"close\"].pct_change", "candles[\"open\"].pct_change")
    llm = ScriptedCaller([TuneReply(proposals=[
            TuneProposal(strategy="lag_momentum", params={"lookback": 2}, rationale="shorter lookback",
                         diagnosis="lags the edge"),
            TuneProposal(strategy="lag_momentum", params={"lookback": 500}, rationale="out of bounds",
                         diagnosis="x"),
            TuneProposal(strategy="unknown_one", params={}, rationale="r", diagnosis="d"),
            TuneProposal(strategy="lag_momentum", params={"threshold": 0.002}, code=new_code,
                         rationale="use the open", diagnosis="d"),
    ])])

    targets = [{"name": "lag_momentum", "code": LAG_MOMENTUM, "version": 7,
                "metrics": {"sharpe": -0.5}}]
    results = tune(targets, small, llm=llm, costs=COSTS)
    [call] = llm.calls
    assert call.step == "tune" and call.reply_type is TuneReply
    assert "lag_momentum" in call.prompt.user and "param_space" in call.prompt.user
    assert len(results) == 2
    params_only, with_code = results
    assert params_only.candidate.parent == "lag_momentum@7" and params_only.candidate.origin == "tuner"
    assert params_only.params == {"lookback": 2, "threshold": 0.0}
    assert params_only.after_metrics["per_symbol"]["BTC-USDT"]["n_trades"] > 0
    assert params_only.improved is (params_only.after_metrics["sharpe"] > params_only.before_metrics["sharpe"])
    assert with_code.candidate.meta["code_changed"] is True and with_code.after_metrics == {}
    # parameters fitted on the candles up to their last bar; new code cannot be scored as its parent
    assert params_only.candidate.meta["fitted_until"] == small["BTC-USDT"].index[-1].isoformat()
    assert "fitted_until" not in with_code.candidate.meta
    assert 'candles["open"]' in with_code.candidate.code
    assert read_class_literals(with_code.candidate.code, "name")["name"] == with_code.candidate.name
    assert with_code.candidate.name != params_only.candidate.name


def test_online_tuning_passes_param_bounds_and_rejects_an_out_of_bounds_payload():
    llm = ScriptedCaller([{"proposals": [{"strategy": "lag_momentum", "params": {"lookback": 999},
                                          "rationale": "r", "diagnosis": "d"}]}])

    targets = [{"name": "lag_momentum", "code": LAG_MOMENTUM, "version": 1, "category": "momentum",
                "params": {"lookback": 120, "threshold": 0.0},
                "param_space": {"lookback": (1, 150), "threshold": (0.0, 0.01)}, "diagnosis": ["x"]}]
    with pytest.raises(LLMResponseError, match="lookback"):
        tune(targets, {}, llm=llm)
    assert llm.calls[0].param_bounds == {"lag_momentum": {"lookback": (1, 150), "threshold": (0.0, 0.01)}}


def test_a_tuned_version_tried_before_is_not_proposed_again(edge_market):
    cls = signal_function(LAG_MOMENTUM, origin="user")  # every trial in the sandbox
    small = {"BTC-USDT": edge_market["BTC-USDT"].iloc[:1500]}
    first = tune_strategy(cls, LAG_MOMENTUM, small, n_trials=8, seed=2, costs=COSTS)
    assert first.candidate is not None and first.tuning["skipped_tried"] == 0
    assert first.candidate.meta["fitted_until"] == small["BTC-USDT"].index[-1].isoformat()
    again = tune_strategy(cls, LAG_MOMENTUM, small, n_trials=8, seed=2, costs=COSTS,
                          tried_names={first.candidate.name})
    assert again.tuning["skipped_tried"] == 1
    assert again.candidate is None or again.candidate.name != first.candidate.name


def test_tune_strategies_seeds_by_run_date(edge_market):
    small = {"BTC-USDT": edge_market["BTC-USDT"].iloc[:1500]}
    target = [{"name": "lag_momentum", "code": LAG_MOMENTUM, "version": 1}]
    kwargs = {"n_trials": 4, "seed": 0, "costs": COSTS}
    day1 = tune(target, small, run_date="2024-06-01", **kwargs)[0]
    day1_again = tune(target, small, run_date="2024-06-01", **kwargs)[0]
    day2 = tune(target, small, run_date="2024-06-02", **kwargs)[0]
    assert day1.tuning["seed"] == day1_again.tuning["seed"] and day1.params == day1_again.params
    assert day1.tuning["seed"] != day2.tuning["seed"]
