"""Planted edges are found by the right family, and a strong one is significant for a rule-based
strategy (issue 11, Tests).

Two markets with positive lag-1 return autocorrelation, scored and ranked by the steps as the
DAG runs them (ML off: the claim is about rule-based strategies), read back from the
leaderboard (`ranking.leaderboard`, the CLI's and the report's ranking):

* the synthetic sample market with its planted momentum edge (`market.sample.Edge`);
* an independent AR(1) series written here as CSV by its own small generator, imported with
  the CLI's `import-candles` and researched with data_source="stored".

The right family for positive autocorrelation is the strategies whose position follows the
sign of the recent move. The built-in categories name a strategy's input, not its direction:
besides momentum, trend and breakout, `obv_trend` (sign of OBV against its mean),
`volume_spike` (the spike bar's direction), `vol_breakout` (the big move's sign) and
`vol_regime_trend` (sign of close against its mean) follow the move; only the
`mean_reversion` category bets against it. So: the top 3 follow the move, every
mean-reversion strategy ranks in the bottom half, and a rule-based strategy's deflated
Sharpe ratio (mean over symbols, as the leaderboard shows it) reaches 0.95.
"""
from __future__ import annotations

import pytest

from blofin_pipeline import cli, steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.ranking import leaderboard
from blofin_pipeline.store import open_store
from tests.steps import test_stored_source as stored_source

DAY = "2026-06-01"
DAYS = 540                  # the whole stored history is scored
AGAINST_THE_MOVE = "mean_reversion"
SIGNIFICANT = 0.95


def write_ar1_csv(path, seed: int, *, days: int, phi: float) -> None:
    """Hourly AR(1) bars ending at DAY (`tests.steps.test_stored_source.write_ar1_csv`)."""
    stored_source.write_ar1_csv(path, seed, days=days, phi=phi, end=DAY)


def ranked(tmp_path, **cfg) -> list[dict]:
    """The leaderboard of DAY after ingest, scoring and ranking on `cfg`."""
    config = PipelineConfig(history_days=DAYS, score_window_days=DAYS, n_designs=0, n_tunes=0, ml_enabled=False,
                            **cfg)
    ctx = RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                            db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", workspace=tmp_path)
    steps.ingest_candles(ctx)
    steps.score_strategies(ctx)
    steps.rank_and_update(ctx)
    with open_store(ctx.db_url) as store:
        rows = leaderboard(store, DAY)
    for r in rows:
        print(r["rank"], r["strategy"], r["category"], r["score"], r["sharpe"], r["deflated_sharpe"])
    return rows


def assert_found_by_the_move_followers(rows: list[dict]) -> None:
    assert len(rows) >= 12
    assert all(r["category"] != AGAINST_THE_MOVE for r in rows[:3]), rows[:3]
    against = [i for i, r in enumerate(rows) if r["category"] == AGAINST_THE_MOVE]
    assert against and min(against) >= len(rows) // 2, rows


def assert_significant_rule_based(rows: list[dict]) -> None:
    rule_based = [r for r in rows if r["category"] != "ml"]
    best = max(rule_based, key=lambda r: r["deflated_sharpe"] or 0.0)
    assert best["deflated_sharpe"] >= SIGNIFICANT, best


@pytest.mark.slow
def test_the_synthetic_markets_strong_momentum_edge(tmp_path):
    rows = ranked(tmp_path, symbols=("BTC-USDT", "ETH-USDT"), sample_edge="momentum:0.5")
    assert_found_by_the_move_followers(rows)
    assert_significant_rule_based(rows)


@pytest.fixture(scope="module")
def ar1_rows(tmp_path_factory) -> list[dict]:
    tmp_path = tmp_path_factory.mktemp("ar1")
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    symbols = ("AAA-USDT", "BBB-USDT")
    for seed, symbol in enumerate(symbols):
        path = tmp_path / f"{symbol}.csv"
        write_ar1_csv(path, 100 + seed, days=DAYS + 10, phi=0.3)
        assert cli.main(["--db", db, "import-candles", "--symbol", symbol, "--timeframe", "1H", str(path)]) == 0
    return ranked(tmp_path, symbols=symbols, data_source="stored")


@pytest.mark.slow
def test_an_imported_ar1_series_is_found_by_the_move_followers(ar1_rows):
    assert_found_by_the_move_followers(ar1_rows)


@pytest.mark.slow
def test_an_imported_ar1_series_is_significant_for_a_rule_based_strategy(ar1_rows):
    assert_significant_rule_based(ar1_rows)
