from __future__ import annotations

import pandas as pd
import pytest

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.exceptions import DataValidationError, ExchangeError
from blofin_pipeline.market.blofin_client import BlofinClient
from blofin_pipeline.market.candles import to_ms
from blofin_pipeline.market.ingest import MAX_GAP_FETCHES
from blofin_pipeline.market.sample import generate_candles
from blofin_pipeline.store import open_store
from tests.fakes.blofin_server import FakeBlofinServer, Fault

SYMBOLS = ("BTC-USDT", "ETH-USDT")
HOUR_MS = 3_600_000


def ctx_for(db_url, tmp_path, day: str, **cfg) -> RunContext:
    config = PipelineConfig(**{"symbols": SYMBOLS, "history_days": 30, "score_window_days": 20,
                            "wf_train_days": 10, **cfg})
    return RunContext.create(logical_date=day, data_end=day, config=config, db_url=db_url, workspace=tmp_path)


def counts(db_url) -> dict:
    with open_store(db_url) as store:
        return store.table_counts(["candles", "candle_gaps", "pipeline_runs"])


def test_sample_ingest_stores_every_symbol_and_rerun_changes_nothing(db_url, tmp_path):
    ctx = ctx_for(db_url, tmp_path, "2026-03-10")
    summary = steps.ingest_candles(ctx)
    assert summary["synthetic"] is True
    assert {s: v["rows"] for s, v in summary["symbols"].items()} == {s: 30 * 24 for s in SYMBOLS}
    first = counts(db_url)
    steps.ingest_candles(ctx)
    assert counts(db_url) == first
    with open_store(db_url) as store:
        assert store.query("SELECT DISTINCT source FROM candles") == [{"source": "sample"}]
        run = store.query("SELECT status, error FROM pipeline_runs WHERE step = 'ingest_candles'")
    assert run == [{"status": "success", "error": None}]


def test_next_day_fetches_only_the_new_bars_and_backfill_sees_its_own_day(db_url, tmp_path):
    steps.ingest_candles(ctx_for(db_url, tmp_path, "2026-03-10"))
    s = steps.ingest_candles(ctx_for(db_url, tmp_path, "2026-03-11"))
    assert s["symbols"]["BTC-USDT"]["rows"] == 24
    assert s["symbols"]["BTC-USDT"]["from"] == "2026-03-10T00:00:00+00:00"
    with open_store(db_url) as store:
        last = store.scalar("SELECT MAX(ts) AS m FROM candles")
    assert pd.Timestamp(last, unit="ms", tz="UTC") == pd.Timestamp("2026-03-10 23:00", tz="UTC")
    # Backfilling an earlier date writes nothing new and does not see later data.
    before = counts(db_url)
    s = steps.ingest_candles(ctx_for(db_url, tmp_path, "2026-03-05"))
    assert s["symbols"]["BTC-USDT"]["rows"] == 0
    assert counts(db_url)["candles"] == before["candles"]


def _client_factory(srv):
    return lambda: BlofinClient(srv.base_url, sleep=lambda s: None)


def test_blofin_ingest_through_the_real_client_drops_the_forming_candle(db_url, tmp_path):
    day = "2026-03-10"
    data = {(s, "1H"): generate_candles(s, "1H", pd.Timestamp("2026-02-01", tz="UTC"),
                                         pd.Timestamp("2026-03-10 01:00", tz="UTC")) for s in SYMBOLS}
    with FakeBlofinServer(candles_by_inst=data, unclosed_last=True) as srv:
        ctx = ctx_for(db_url, tmp_path, day, data_source="blofin")
        summary = steps.ingest_candles(ctx, client_factory=_client_factory(srv))
    assert summary["synthetic"] is False and summary["source"] == "blofin"
    # 30 days of closed bars ending at the data end; the server's later bar is not taken.
    assert summary["symbols"]["ETH-USDT"]["rows"] == 30 * 24
    with open_store(db_url) as store:
        last = store.scalar("SELECT MAX(ts) AS m FROM candles")
        quote = store.scalar("SELECT COUNT(*) AS n FROM candles WHERE volume_quote IS NOT NULL")
    assert pd.Timestamp(last, unit="ms", tz="UTC") == pd.Timestamp("2026-03-09 23:00", tz="UTC")
    assert quote == 2 * 30 * 24


def test_exchange_gap_is_recorded_not_filled(sqlite_url, tmp_path):
    full = generate_candles("BTC-USDT", "1H", pd.Timestamp("2026-02-01", tz="UTC"), pd.Timestamp("2026-03-10", tz="UTC"))
    holed = full.drop(full.index[400:405])  # inside the 30-day window
    data = {("BTC-USDT", "1H"): holed, ("ETH-USDT", "1H"): full}
    with FakeBlofinServer(candles_by_inst=data) as srv:
        summary = steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="blofin"),
                                       client_factory=_client_factory(srv))
    assert summary["symbols"]["BTC-USDT"]["missing_bars"] == 5
    with open_store(sqlite_url) as store:
        gaps = store.query("SELECT symbol, missing_bars FROM candle_gaps")
        n = store.scalar("SELECT COUNT(*) AS n FROM candles WHERE symbol = 'BTC-USDT'")
    assert gaps == [{"symbol": "BTC-USDT", "missing_bars": 5}]
    assert n == 30 * 24 - 5


def test_exchange_error_fails_the_step_and_is_logged(sqlite_url, tmp_path):
    data = {(s, "1H"): generate_candles(s, "1H", pd.Timestamp("2026-02-01", tz="UTC"),
                                         pd.Timestamp("2026-03-10", tz="UTC")) for s in SYMBOLS}
    with FakeBlofinServer(candles_by_inst=data) as srv:
        srv.add_fault(Fault.code("152014", "Instrument does not exist"), times=None)
        with pytest.raises(ExchangeError, match="152014"):
            steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="blofin"),
                                client_factory=_client_factory(srv))
    with open_store(sqlite_url) as store:
        row = store.query("SELECT status, error FROM pipeline_runs")[0]
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == 0
    assert row["status"] == "failed" and "152014" in row["error"]


def test_invalid_exchange_candles_store_nothing(sqlite_url, tmp_path):
    bad = generate_candles("BTC-USDT", "1H", pd.Timestamp("2026-02-01", tz="UTC"), pd.Timestamp("2026-03-10", tz="UTC"))
    bad.iloc[400, bad.columns.get_loc("low")] = bad["high"].iloc[400] * 1.1
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): bad}) as srv:
        ctx = ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="blofin").config.with_(symbols=("BTC-USDT",))
        run = RunContext.create(logical_date="2026-03-10", data_end="2026-03-10", config=ctx, db_url=sqlite_url,
                                workspace=tmp_path)
        with pytest.raises(DataValidationError, match="BTC-USDT 1H: OHLC"):
            steps.ingest_candles(run, client_factory=_client_factory(srv))
    with open_store(sqlite_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == 0


# -- exchange edge cases ---------------------------------------------------------------------
def _exchange(days_until: str = "2026-03-12"):
    return {(s, "1H"): generate_candles(s, "1H", pd.Timestamp("2025-12-01", tz="UTC"),
                                        pd.Timestamp(days_until, tz="UTC")) for s in SYMBOLS}


def _gaps(db_url) -> list[tuple]:
    with open_store(db_url) as store:
        rows = store.query("SELECT symbol, gap_start, gap_end, missing_bars, closed_at, fetch_attempts "
                           "FROM candle_gaps ORDER BY symbol, gap_start")
    return [(r["symbol"], r["gap_start"], r["gap_end"], r["missing_bars"], r["closed_at"] is not None,
             r["fetch_attempts"]) for r in rows]


def test_a_page_that_does_not_advance_leaves_a_gap_that_the_next_run_fetches_and_closes(db_url, tmp_path, caplog):
    day = "2026-03-10"
    with FakeBlofinServer(candles_by_inst=_exchange()) as srv:
        srv.add_fault(Fault.same_page(), times=None, path="/api/v1/market/candles")
        with caplog.at_level("WARNING"):
            summary = steps.ingest_candles(ctx_for(db_url, tmp_path, day, data_source="blofin", history_days=90),
                                           client_factory=_client_factory(srv))
        # 90 days = 2160 bars asked for; the one page the exchange repeats (1440 bars, newest 2026-03-11 23:00)
        # reaches back to 2026-01-11: the 768 bars before it are missing.
        first, oldest = pd.Timestamp("2025-12-10", tz="UTC"), pd.Timestamp("2026-01-11", tz="UTC")
        assert summary["symbols"]["BTC-USDT"]["rows"] == 2160 - 768
        assert summary["symbols"]["BTC-USDT"]["missing_bars"] == 768
        assert "could not be fetched" in caplog.text and "recorded as a gap" in caplog.text
        gap = (to_ms(first), to_ms(oldest) - HOUR_MS, 768)
        assert _gaps(db_url) == [("BTC-USDT", *gap, False, 0), ("ETH-USDT", *gap, False, 0)]
        srv.clear_faults()  # the exchange pages properly again: the next run fetches the gap and closes it
        summary = steps.ingest_candles(ctx_for(db_url, tmp_path, "2026-03-11", data_source="blofin",
                                               history_days=90), client_factory=_client_factory(srv))
    assert summary["symbols"]["BTC-USDT"]["gaps_refetched"] == 1
    assert _gaps(db_url) == [("BTC-USDT", *gap, True, 1), ("ETH-USDT", *gap, True, 1)]
    with open_store(db_url) as store:
        n = store.scalar("SELECT COUNT(*) AS n FROM candles WHERE symbol = 'BTC-USDT'")
    assert n == 2160 + 24


def test_a_gap_the_exchange_never_fills_is_fetched_a_bounded_number_of_times(sqlite_url, tmp_path):
    data = _exchange()
    data[("BTC-USDT", "1H")] = data[("BTC-USDT", "1H")].drop(pd.date_range("2026-03-01", periods=5, freq="h",
                                                                            tz="UTC"))
    with FakeBlofinServer(candles_by_inst=data) as srv:
        for day in ("2026-03-10", "2026-03-11", "2026-03-12", "2026-03-12", "2026-03-12"):
            steps.ingest_candles(ctx_for(sqlite_url, tmp_path, day, data_source="blofin"),
                                 client_factory=_client_factory(srv))
    assert _gaps(sqlite_url) == [("BTC-USDT", to_ms(pd.Timestamp("2026-03-01", tz="UTC")),
                                  to_ms(pd.Timestamp("2026-03-01 04:00", tz="UTC")), 5, False, MAX_GAP_FETCHES)]


def test_a_server_error_then_ok_does_not_fail_the_step(sqlite_url, tmp_path):
    with FakeBlofinServer(candles_by_inst=_exchange()) as srv:
        srv.add_fault(Fault.server_error(500), times=2)
        summary = steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="blofin"),
                                       client_factory=_client_factory(srv))
    assert summary["symbols"]["BTC-USDT"]["rows"] == 30 * 24 and summary["symbols"]["BTC-USDT"]["gaps"] == 0


def test_conflicting_rows_across_pages_fail_the_step_naming_the_time(sqlite_url, tmp_path):
    with FakeBlofinServer(candles_by_inst=_exchange(), inclusive=True) as srv:
        srv.add_fault(Fault.altered(1.02), times=1)
        with pytest.raises(DataValidationError, match=r"BTC-USDT 1H: conflicting duplicate candles \(same time, "
                           r"different values\) at 2026-01-09T00:00:00\+00:00"):
            steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="blofin",
                                         history_days=90), client_factory=_client_factory(srv))
    with open_store(sqlite_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == 0


def test_nothing_new_says_up_to_date_with_the_last_bar(sqlite_url, tmp_path, caplog):
    ctx = ctx_for(sqlite_url, tmp_path, "2026-03-10")
    steps.ingest_candles(ctx)
    with caplog.at_level("INFO", logger="blofin_pipeline.market.ingest"):
        summary = steps.ingest_candles(ctx)
    assert "ingest BTC-USDT 1H: up to date to 2026-03-09T23:00:00+00:00" in caplog.text
    assert "0 valid rows of 0" not in caplog.text
    assert summary["symbols"]["BTC-USDT"]["up_to_date"] == "2026-03-09T23:00:00+00:00"


def test_ingest_never_appends_another_source_to_a_series(sqlite_url, tmp_path):
    steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10"))  # the synthetic sample
    with FakeBlofinServer(candles_by_inst=_exchange()) as srv, \
            pytest.raises(DataValidationError, match=r"BTC-USDT 1H already holds 720 'sample' candles .*a series "
                          r"never mixes sources, so no 'blofin' candles were added.*data_source='stored'"):
        steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-11", data_source="blofin"),
                             client_factory=_client_factory(srv))
    with open_store(sqlite_url) as store:
        assert store.query("SELECT DISTINCT source FROM candles") == [{"source": "sample"}]


def test_stored_source_fetches_nothing_and_reports_the_stored_span(sqlite_url, tmp_path, caplog):
    with pytest.raises(DataValidationError, match="no stored candles before .*import-candles"):
        steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10", data_source="stored"))
    steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-10"))
    before = counts(sqlite_url)["candles"]
    with caplog.at_level("INFO", logger="blofin_pipeline.market.ingest"):
        summary = steps.ingest_candles(ctx_for(sqlite_url, tmp_path, "2026-03-12", data_source="stored"))
    assert counts(sqlite_url)["candles"] == before
    assert summary["source"] == "stored" and summary["sources"] == ["sample"] and summary["synthetic"] is True
    assert summary["symbols"]["BTC-USDT"]["stored_bars"] == 720
    assert "ingest BTC-USDT 1H: stored: 720 bars to 2026-03-09T23:00:00+00:00 (source sample); nothing fetched" \
        in caplog.text
