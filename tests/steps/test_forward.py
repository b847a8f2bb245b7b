"""The forward record and the day's signals over consecutive runs on the synthetic market."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blofin_pipeline import steps
from blofin_pipeline.backtest import run_backtest
from blofin_pipeline.backtest.forward import anchor_of, rows_to_bars
from blofin_pipeline.cli import main
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.market.candles import load_candles
from blofin_pipeline.store import open_store
from blofin_pipeline.strategies import builtin_strategies, registry

TABLES = ["candles", "strategies", "strategy_backtest_results", "ranking_history", "knowledge_base", "pipeline_runs",
          "research_trials", "forward_returns", "signals"]
SMALL = dict(symbols=("BTC-USDT", "ETH-USDT"), history_days=30, score_window_days=20,
             wf_train_days=10, n_designs=0, n_tunes=0,
             ml_enabled=False, wf_folds=2, wf_candidates=1, top_strategies=4)
PEEK = '''
import numpy as np

from blofin_pipeline.strategies import Strategy


class PeekNext(Strategy):
    """Trades the next bar's move: it reads the close after the one it decides at."""

    name = "peek_next"
    category = "momentum"

    def generate_signals(self, candles):
        close = candles["close"]
        return np.sign(close.shift(-1) - close).fillna(0.0)
'''


def day(i: int) -> str:
    return f"2026-04-{i:02d}"


def make_ctx(tmp_path, run_date: str) -> RunContext:
    return RunContext.create(logical_date=run_date, data_end=run_date, config=PipelineConfig(**SMALL),
                             db_url=f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}", workspace=tmp_path)


def run_day(tmp_path, run_date: str) -> dict:
    """The steps the forward record needs: ingest, score, rank (research is off in SMALL)."""
    ctx = make_ctx(tmp_path, run_date)
    steps.ingest_candles(ctx)
    steps.score_strategies(ctx)
    return steps.rank_and_update(ctx)


def forward_by_date(tmp_path) -> dict[str, list[dict]]:
    with open_store(make_ctx(tmp_path, day(1)).db_url) as store:
        rows = store.query("SELECT * FROM forward_returns ORDER BY run_date, strategy, version, symbol")
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["run_date"], []).append({k: v for k, v in r.items() if k != "created_at"})
    return out


def counts(tmp_path) -> dict[str, int]:
    with open_store(make_ctx(tmp_path, day(1)).db_url) as store:
        return store.table_counts(TABLES)


def test_ten_days_grow_one_day_per_run_rerun_changes_nothing_backfill_fills_its_date(tmp_path):
    order = [1, 2, 3, 4, 6, 7, 8, 9, 10]          # the 5th is missed, and backfilled at the end
    for n, i in enumerate(order):
        out = run_day(tmp_path, day(i))
        recorded = forward_by_date(tmp_path)
        assert sorted(recorded) == [day(j) for j in order[1:n + 1]], f"after {day(i)}"
        assert out["forward"]["rows"] == (0 if i == 1 else len(recorded[day(i)])) and not out["forward"]["failed"]
        assert out["signals"]["rows"] == 2 * len(out["strategies"]["kept"]) > 0 and out["signals"]["synthetic"]
    with open_store(make_ctx(tmp_path, day(1)).db_url) as store:
        days_tracked = store.query("SELECT strategy, COUNT(DISTINCT run_date) AS n FROM forward_returns "
                                   "GROUP BY strategy ORDER BY n DESC")
    assert days_tracked[0]["n"] == len(order) - 1   # kept throughout: one day per run after the first

    before, rows_before = counts(tmp_path), forward_by_date(tmp_path)
    for i in (3, 10):                              # a retry of an old date and of the latest
        run_day(tmp_path, day(i))
        assert counts(tmp_path) == before and forward_by_date(tmp_path) == rows_before

    run_day(tmp_path, day(5))                      # the backfill
    rows_after = forward_by_date(tmp_path)
    assert set(rows_after) - set(rows_before) == {day(5)} and rows_after[day(5)]
    assert {d: r for d, r in rows_after.items() if d != day(5)} == rows_before
    with open_store(make_ctx(tmp_path, day(1)).db_url) as store:
        assert store.scalar("SELECT COUNT(*) FROM signals WHERE run_date = :d", {"d": day(5)}) > 0
    after = counts(tmp_path)
    assert after["forward_returns"] == before["forward_returns"] + len(rows_after[day(5)])

    _assert_forward_returns_equal_a_direct_backtest(tmp_path, days_tracked[0]["strategy"])


def _assert_forward_returns_equal_a_direct_backtest(tmp_path, name: str) -> None:
    """The concatenated record of a built-in is exactly run_backtest over the same bars."""
    ctx = make_ctx(tmp_path, day(10))
    with open_store(ctx.db_url) as store:
        rows = store.query("SELECT * FROM forward_returns WHERE strategy = :n AND symbol = 'BTC-USDT' "
                           "ORDER BY run_date", {"n": name})
        record = rows_to_bars([b for r in rows for b in json.loads(r["bars"])])
        anchor = anchor_of(ctx.data_end, day(10), rows[0]["promoted_on"], ctx.config.score_window_days)
        candles = load_candles(store, "BTC-USDT", "1H", anchor, ctx.data_end)
    assert rows[0]["run_date"] == day(2) and len(rows) == 9 and len(record) == 9 * 24 + 1  # + the entry bar
    strategy = builtin_strategies()[name](json.loads(rows[0]["params"]))
    positions = strategy.signals(candles).loc[record.index]
    direct = run_backtest(candles.loc[record.index], positions, ctx.config.fee, ctx.config.slippage, timeframe="1H")
    assert np.array_equal(record["position"].to_numpy(), positions.to_numpy())
    assert np.array_equal(record["return"].to_numpy(), direct.returns.to_numpy())
    assert np.array_equal(record["close"].to_numpy(), candles.loc[record.index, "close"].to_numpy())


def test_a_peeking_strategy_forced_active_decays_loses_its_place_and_is_reported(tmp_path, capsys):
    ctx = make_ctx(tmp_path, day(1))
    with open_store(ctx.db_url) as store:   # the test double: registered active, past every check
        registry.register(store, name="peek_next", category="momentum", params={}, param_space={}, code=PEEK,
                          origin="user", run_date=day(0), status="active")  # active from the day before
    first = run_day(tmp_path, day(1))
    assert first["strategies"]["best"]["item"] == "peek_next@1"
    second = run_day(tmp_path, day(2))
    with open_store(ctx.db_url) as store:
        backtest = store.query("SELECT sharpe, total_return FROM strategy_backtest_results "
                               "WHERE run_date = :d AND strategy = 'peek_next'", {"d": day(1)})
        forward = store.query("SELECT day_return, bars, expected_sharpe FROM forward_returns "
                              "WHERE strategy = 'peek_next'")
        decision = store.query("SELECT decision, reason FROM ranking_history WHERE run_date = :d "
                               "AND item = 'peek_next@1'", {"d": day(2)})[0]
        status = store.scalar("SELECT status FROM strategies WHERE name = 'peek_next'")
    assert min(b["sharpe"] for b in backtest) > 20 and min(b["total_return"] for b in backtest) > 0.2
    assert len(forward) == 2 and all(abs(f["day_return"]) < 1e-3 for f in forward)
    assert all(f["expected_sharpe"] > 20 for f in forward)
    assert decision["decision"] == "archived" and status == "archived"
    assert "forward record contradicts its backtest" in decision["reason"]
    assert "peek_next@1" in second["strategies"]["archived"]

    # The report, its signals file and the CLI say the same.
    steps.generate_report(make_ctx(tmp_path, day(2)))
    report = json.loads((tmp_path / "data" / "reports" / f"{day(2)}.json").read_text())
    peek = next(r for r in report["forward"]["rows"] if r["strategy"] == "peek_next@1")
    assert peek["decayed"] and peek["decision"] == "archived" and peek["days"] == 1
    assert any("forward record contradicts" in f for f in report["summary"]["flags"])
    leaders = [r["strategy"] for r in report["forward"]["rows"] if r["decision"] == "kept"]
    assert [c["strategy"] for c in report["forward"]["curves"]] == leaders and report["forward"]["synthetic"]
    assert len(leaders) == 3   # the peeking one's place: nobody left to take it (the rest went on day 1)
    html = (tmp_path / "data" / "reports" / f"{day(2)}.html").read_text()
    assert 'id="forward"' in html and 'id="signals"' in html and "Forward equity since promotion" in html
    signals = json.loads((tmp_path / "data" / "reports" / f"{day(2)}.signals.json").read_text())
    assert signals == report["signals"] and signals["synthetic"] and "SYNTHETIC" in signals["data_notice"]
    assert len(signals["signals"]) == 2 * len(leaders) and set(signals["consensus"]) == {"BTC-USDT", "ETH-USDT"}
    assert signals["for_bar"] == pd.Timestamp(day(2), tz="UTC").isoformat()

    db = ["--db", ctx.db_url]
    capsys.readouterr()
    assert main(db + ["forward"]) == 0
    table = capsys.readouterr().out
    assert "SYNTHETIC" in table and "peek_next@1" in table and "DECAY" in table
    assert main(db + ["forward", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == json.loads(json.dumps(report["forward"]["rows"]))
    assert main(db + ["signals", "--date", day(2), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == signals
    assert main(db + ["signals"]) == 0
    assert "consensus" in capsys.readouterr().out


@pytest.mark.parametrize("date", [None, "2026-01-01"])
def test_cli_on_an_empty_database(tmp_path, capsys, date):
    db = ["--db", f"sqlite:///{tmp_path / 'empty.db'}"]
    extra = ["--date", date] if date else []
    assert main(db + ["forward", *extra]) == 0
    assert "no forward record yet" in capsys.readouterr().out
    assert main(db + ["signals", *extra]) == 0
    assert "no signals" in capsys.readouterr().out


def test_an_ensemble_as_strategy_trades_its_artefact_on_data_up_to_each_bar(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from blofin_pipeline.backtest.forward import decided_positions
    from blofin_pipeline.market.sample import generate_candles
    from blofin_pipeline.ml.artefacts import save_artefact
    from blofin_pipeline.ml.features import build_features
    from blofin_pipeline.ml.inference import signals_from_artefact
    from blofin_pipeline.steps.forward import Deployed, signal_of
    from blofin_pipeline.steps.ml import ML_STRATEGY_CODE
    from blofin_pipeline.strategies.registry import StrategyRecord

    start, end = pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-21", tz="UTC")
    frames = {s: generate_candles(s, "1H", start, end, seed=2) for s in SMALL["symbols"]}
    features = build_features(frames, "BTC-USDT")[["ret_lag1", "mkt_ret", "rsi_14"]].dropna()
    label = (frames["BTC-USDT"]["close"].pct_change().shift(-1).loc[features.index] > 0).astype(int)
    model = LogisticRegression().fit(features.iloc[:200], label.iloc[:200])
    artefact = save_artefact(tmp_path, "2026-01-10", "ens", "v1", {
        "symbol": "BTC-USDT", "feature_symbols": list(SMALL["symbols"]), "features": list(features.columns),
        "estimator": model, "threshold": 0.5, "train_end": features.index[199].isoformat(), "horizon": 3}, {})
    code = ML_STRATEGY_CODE.format(run_date="2026-01-10", artefacts={"BTC-USDT": str(artefact)})
    record = StrategyRecord(name="ml_ens", version=1, category="ml", params={}, param_space={}, code=code,
                            code_hash="h", status="active", origin="ml", parent=None, rationale=None)
    signal = signal_of(Deployed(record, "2026-01-10", {"BTC-USDT": ({}, 1.0)}), "BTC-USDT", frames)
    full = signals_from_artefact(artefact, frames, "BTC-USDT").to_numpy()
    decided = decided_positions(signal, frames["BTC-USDT"], len(frames["BTC-USDT"]) - 30)
    assert np.array_equal(decided, full[-30:]) and np.abs(decided).sum() > 0   # its features are causal
    trained = frames["BTC-USDT"].index.get_loc(features.index[199])   # flat through train_end + horizon - 1
    around = decided_positions(signal, frames["BTC-USDT"].iloc[: trained + 8], trained - 2)
    assert np.array_equal(around, full[trained - 2: trained + 8]) and not around[:5].any()
