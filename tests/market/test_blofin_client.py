"""BlofinClient over real HTTP against the local fake BloFin server (tests/fakes/blofin_server.py)."""
from __future__ import annotations

import json
import logging

import httpx
import numpy as np
import pandas as pd
import pytest

from blofin_pipeline.exceptions import (
    ConfigError,
    DataValidationError,
    ExchangeBanError,
    ExchangeError,
    RateLimitError,
)
from blofin_pipeline.market.blofin_client import BlofinClient, SlidingWindowLimiter
from tests.fakes.blofin_server import (
    CANDLES_PATH,
    INSTRUMENTS_PATH,
    FakeBlofinServer,
    Fault,
)

HOUR_MS = 3_600_000
START = pd.Timestamp("2024-01-01", tz="UTC")
START_MS = int(START.timestamp() * 1000)


def make_candles(n: int, seed: int = 7) -> pd.DataFrame:
    """n hourly candles with distinct, irregular values (so a shifted or repeated row shows)."""
    rng = np.random.default_rng(seed)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    volume = rng.uniform(1, 100, n).round(3)
    index = pd.date_range(START, periods=n, freq="h", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume,
         "volume_quote": volume * close},
        index=index,
    )


class Sleeps(list):
    """Injected `sleep`: records the requested waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def candles() -> pd.DataFrame:
    return make_candles(3500)


@pytest.fixture
def server(candles: pd.DataFrame):
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): candles}) as srv:
        yield srv


@pytest.fixture
def client(server: FakeBlofinServer, sleeps: Sleeps):
    with BlofinClient(server.base_url, sleep=sleeps, max_retries=3, timeout=5.0) as c:
        yield c


def assert_standard_frame(df: pd.DataFrame) -> None:
    assert df.index.name == "ts"
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "volume_quote"]
    assert (df.dtypes == "float64").all()


# --- pagination -----------------------------------------------------------------------
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
def test_fetch_candles_pages_backwards_and_returns_every_row_once(candles, sleeps, inclusive):
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): candles}, inclusive=inclusive) as srv, \
            BlofinClient(srv.base_url, sleep=sleeps) as client:
        end_ms = START_MS + len(candles) * HOUR_MS
        df = client.fetch_candles("BTC-USDT", "1H", START_MS, end_ms)
        requests = srv.candle_requests()

    assert_standard_frame(df)
    pd.testing.assert_frame_equal(df, candles, check_freq=False)
    assert df.index.equals(candles.index)
    # 3500 rows at 1440 per page: at least 3 pages, each asking for older rows than the last.
    assert len(requests) >= 3
    afters = [int(req.params["after"]) for req in requests]
    assert afters[0] == end_ms
    assert afters == sorted(afters, reverse=True) and len(set(afters)) == len(afters)
    assert all(req.params["limit"] == "1440" and req.params["instId"] == "BTC-USDT"
               and req.params["bar"] == "1H" for req in requests)
    assert sleeps == []


def test_fetch_candles_keeps_start_inclusive_and_end_exclusive(client, candles):
    start_ms = START_MS + 100 * HOUR_MS
    end_ms = START_MS + 2000 * HOUR_MS
    df = client.fetch_candles("BTC-USDT", "1H", start_ms, end_ms)

    expected = candles.iloc[100:2000]
    pd.testing.assert_frame_equal(df, expected, check_freq=False)
    assert df.index[0] == pd.Timestamp(start_ms, unit="ms", tz="UTC")
    assert df.index[-1] == pd.Timestamp(end_ms - HOUR_MS, unit="ms", tz="UTC")


def test_fetch_candles_does_not_invent_rows_across_a_gap(sleeps):
    holey = make_candles(300).drop(make_candles(300).index[100:150])
    with FakeBlofinServer(candles_by_inst={("ETH-USDT", "1H"): holey}) as srv, \
            BlofinClient(srv.base_url, sleep=sleeps) as client:
        df = client.fetch_candles("ETH-USDT", "1H", START_MS, START_MS + 300 * HOUR_MS)
    assert len(df) == 250
    pd.testing.assert_frame_equal(df, holey, check_freq=False)


def test_fetch_candles_outside_the_data_returns_an_empty_standard_frame(client):
    df = client.fetch_candles("BTC-USDT", "1H", START_MS - 10 * HOUR_MS, START_MS)
    assert df.empty
    assert_standard_frame(df)


def test_fetch_candles_stops_when_a_page_does_not_move_backwards(caplog):
    """An exchange that ignores `after` must not make the client loop forever."""
    rows = [[str(START_MS + i * HOUR_MS), "1", "2", "0.5", "1.5", "10", "0.01", "15", "1"]
            for i in range(4, -1, -1)]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"code": "0", "msg": "success", "data": rows})

    with BlofinClient("http://blofin.invalid", transport=httpx.MockTransport(handler), sleep=Sleeps()) as client, \
            caplog.at_level(logging.WARNING):
        df = client.fetch_candles("BTC-USDT", "1H", START_MS - 100 * HOUR_MS, START_MS + 100 * HOUR_MS)
    assert len(calls) == 2
    assert len(df) == 5
    assert "did not move backwards" in caplog.text


def test_a_server_repeating_the_same_page_is_detected_and_the_unfetched_span_reported(client, server, candles):
    server.add_fault(Fault.same_page(), times=None)
    end_ms = START_MS + 3000 * HOUR_MS
    df, unfetched = client.fetch_candle_span("BTC-USDT", "1H", START_MS, end_ms)
    assert len(server.candle_requests()) == 2  # the second page did not move: stop, do not loop
    # The latest page (1440 rows, newest at 3499 h) covers [2060 h, 3000 h) of the range; the rest was not reached.
    assert len(df) == 3000 - 2060
    assert unfetched == (START_MS, START_MS + 2060 * HOUR_MS)


def test_a_complete_fetch_reports_nothing_unfetched(client):
    df, unfetched = client.fetch_candle_span("BTC-USDT", "1H", START_MS, START_MS + 3000 * HOUR_MS)
    assert len(df) == 3000 and unfetched is None


def test_conflicting_rows_across_pages_are_refused_naming_the_time(sleeps, candles):
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): candles}, inclusive=True) as srv, \
            BlofinClient(srv.base_url, sleep=sleeps) as client:
        client.fetch_candles("BTC-USDT", "1H", START_MS, START_MS + 3000 * HOUR_MS)  # overlapping rows agree
        srv.add_fault(Fault.altered(1.01), times=1)  # the first page's prices differ from the second's
        with pytest.raises(DataValidationError, match=r"BTC-USDT 1H: conflicting duplicate candles \(same time, "
                           r"different values\) at 2024-03-06T01:00:00\+00:00 across BloFin pages"):
            client.fetch_candles("BTC-USDT", "1H", START_MS, START_MS + 3000 * HOUR_MS)


def test_limit_above_1440_is_a_config_error_before_any_request(client, server):
    with pytest.raises(ConfigError, match="limit"):
        client.get_candles_page("BTC-USDT", "1H", limit=1441)
    assert server.requests == []


def test_get_candles_page_sends_after_before_and_limit(client, server, candles):
    after = START_MS + 50 * HOUR_MS
    page = client.get_candles_page("BTC-USDT", "1H", after=after, limit=10)
    assert [row.ts for row in page] == [START_MS + i * HOUR_MS for i in range(49, 39, -1)]
    assert page[0].close == candles["close"].iloc[49]
    assert server.requests[-1].params == {"instId": "BTC-USDT", "bar": "1H", "after": str(after), "limit": "10"}

    page = client.get_candles_page("BTC-USDT", "1H", after=after, before=after - 4 * HOUR_MS, limit=10)
    assert [row.ts for row in page] == [START_MS + i * HOUR_MS for i in (49, 48, 47)]


# --- unclosed candles -------------------------------------------------------------------
def test_unclosed_latest_candle_is_dropped(sleeps, caplog):
    df = make_candles(50)
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): df}, unclosed_last=True) as srv, \
            BlofinClient(srv.base_url, sleep=sleeps) as client, caplog.at_level(logging.INFO):
        page = client.get_candles_page("BTC-USDT", "1H")
        fetched = client.fetch_candles("BTC-USDT", "1H", START_MS, START_MS + 50 * HOUR_MS)

    last_ts = START_MS + 49 * HOUR_MS
    assert len(page) == 49 and page[0].ts == last_ts - HOUR_MS
    assert all(row.confirmed for row in page)
    pd.testing.assert_frame_equal(fetched, df.iloc[:-1], check_freq=False)
    assert "dropped 1 unclosed" in caplog.text


# --- rate limiting and bans ----------------------------------------------------------
def test_429_twice_then_success_backs_off_exponentially(client, server, sleeps):
    server.add_fault(Fault.rate_limited(), times=2)
    page = client.get_candles_page("BTC-USDT", "1H", limit=5)
    assert len(page) == 5
    assert sleeps == [1.0, 2.0]
    assert len(server.requests) == 3


def test_429_honours_retry_after(client, server, sleeps):
    server.add_fault(Fault.rate_limited(retry_after=7), times=1)
    assert len(client.get_candles_page("BTC-USDT", "1H", limit=5)) == 5
    assert sleeps == [7.0]


def test_body_code_429_on_http_200_is_retried_like_http_429(client, server, sleeps):
    server.add_fault(Fault.code("429", "Too Many Requests"), times=1)
    assert len(client.get_candles_page("BTC-USDT", "1H", limit=5)) == 5
    assert sleeps == [1.0]


def test_retry_after_longer_than_backoff_max_fails_instead_of_retrying_early(server, sleeps):
    server.add_fault(Fault.rate_limited(retry_after=300), times=None)
    with BlofinClient(server.base_url, sleep=sleeps, backoff_max=60.0) as client, \
            pytest.raises(RateLimitError, match="Retry-After 300"):
        client.get_candles_page("BTC-USDT", "1H")
    assert len(server.requests) == 1 and sleeps == []


def test_429_forever_raises_rate_limit_error_after_max_retries(client, server, sleeps):
    server.add_fault(Fault.rate_limited(), times=None)
    with pytest.raises(RateLimitError, match="BTC-USDT") as excinfo:
        client.fetch_candles("BTC-USDT", "1H", START_MS, START_MS + 10 * HOUR_MS)
    assert "/api/v1/market/candles" in str(excinfo.value)
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(server.requests) == 4  # the first try + max_retries=3


def test_403_is_a_ban_and_is_not_retried(client, server, sleeps):
    server.add_fault(Fault.banned(), times=None)
    with pytest.raises(ExchangeBanError, match="403") as excinfo:
        client.get_candles_page("BTC-USDT", "1H")
    assert "BTC-USDT" in str(excinfo.value)
    assert len(server.requests) == 1
    assert sleeps == []


def test_rate_limiter_sleeps_before_the_request_over_the_limit(server):
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with BlofinClient(server.base_url, max_requests_per_minute=3, clock=lambda: now[0], sleep=sleep) as client:
        for _ in range(3):
            client.get_instruments()
            now[0] += 10.0
        assert sleeps == []
        client.get_instruments()  # 4th within the minute: waits until the 1st leaves the window
    assert sleeps == [pytest.approx(30.0)]
    assert len(server.requests) == 4


def test_sliding_window_never_allows_more_than_the_limit_in_any_window():
    now = [0.0]
    granted: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = SlidingWindowLimiter(5, 60.0, clock=lambda: now[0], sleep=sleep)
    for i in range(40):
        limiter.acquire()
        granted.append(now[0])
        now[0] += (i % 4) * 1.5
    for t in granted:
        assert sum(t <= g < t + 60.0 for g in granted) <= 5


# --- error bodies --------------------------------------------------------------------
def test_code_error_names_the_symbol_bar_request_and_code(client, server, sleeps):
    server.add_fault(Fault.code("152002", "Parameter bar error."))
    with pytest.raises(ExchangeError) as excinfo:
        client.get_candles_page("BTC-USDT", "1H")
    message = str(excinfo.value)
    for part in ("BTC-USDT", "1H", "152002", "Parameter bar error.", "/api/v1/market/candles", "limit=1440"):
        assert part in message
    assert sleeps == []


def test_unknown_bar_and_unknown_instrument_are_exchange_errors(client):
    with pytest.raises(ExchangeError, match="152002"):
        client.get_candles_page("BTC-USDT", "7H")
    with pytest.raises(ExchangeError, match="152014.*NOPE-USDT|NOPE-USDT.*152014"):
        client.fetch_candles("NOPE-USDT", "1H", START_MS, START_MS + HOUR_MS)


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":"0","msg":"success","data":[["17',                                  # truncated JSON
        b"<html>bad gateway</html>",                                                 # not JSON
        b'[["1704067200000","1","2","0.5","1.5","10","0.01","15","1"]]',              # no envelope
        b'{"code":"0","msg":"success","data":{"ts":"1"}}',                            # data not a list
        b'{"code":"0","msg":"success","data":[["1704067200000","1","2","0.5","1.5","10","0.01","1"]]}',  # 8 fields
        b'{"code":"0","msg":"success","data":[["1704067200000","1","x","0.5","1.5","10","0.01","15","1"]]}',
        b'{"code":"0","msg":"success","data":[["1704067200000","1","2","0.5","1.5","10","0.01","15","2"]]}',
    ],
    ids=["truncated", "html", "no-envelope", "data-not-list", "short-row", "non-numeric", "bad-confirm"],
)
def test_malformed_body_is_an_exchange_error_naming_the_request(client, server, sleeps, body):
    server.add_fault(Fault.malformed(body))
    with pytest.raises(ExchangeError) as excinfo:
        client.get_candles_page("BTC-USDT", "1H")
    assert "BTC-USDT" in str(excinfo.value) and "/api/v1/market/candles" in str(excinfo.value)
    assert len(server.requests) == 1 and sleeps == []


def test_other_http_status_is_an_exchange_error_without_retry(client, server, sleeps):
    server.add_fault(Fault.http(404, body=b"no such route"))
    with pytest.raises(ExchangeError, match="HTTP 404"):
        client.get_candles_page("BTC-USDT", "1H")
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.http(502, body=b"upstream down"),
                                   Fault.http(503), Fault.code("500", "Internal Server Error")],
                         ids=["500", "502", "503", "body-code-500"])
def test_server_error_then_ok_is_retried_with_backoff(client, server, sleeps, fault):
    server.add_fault(fault, times=2)
    assert len(client.get_candles_page("BTC-USDT", "1H", limit=3)) == 3
    assert len(server.requests) == 3 and sleeps == [1.0, 2.0]


def test_server_error_forever_is_an_exchange_error_after_max_retries(client, server, sleeps):
    server.add_fault(Fault.server_error(500), times=None)
    with pytest.raises(ExchangeError, match=r"server error HTTP 500.* after 4 attempt\(s\)") as excinfo:
        client.fetch_candles("BTC-USDT", "1H", START_MS, START_MS + 10 * HOUR_MS)
    assert not isinstance(excinfo.value, RateLimitError) and "BTC-USDT" in str(excinfo.value)
    assert len(server.requests) == 4 and sleeps == [1.0, 2.0, 4.0]  # bounded: max_retries=3


# --- timeouts and connection errors ----------------------------------------------------
def test_slow_reply_is_retried_then_succeeds(server, sleeps):
    server.add_fault(Fault.slow(3.0), times=1)
    with BlofinClient(server.base_url, timeout=0.2, sleep=sleeps, max_retries=2) as client:
        assert len(client.get_candles_page("BTC-USDT", "1H", limit=3)) == 3
    assert sleeps == [1.0]


def test_timeout_every_time_is_an_exchange_error(server, sleeps):
    server.add_fault(Fault.slow(3.0), times=None)
    with BlofinClient(server.base_url, timeout=0.2, sleep=sleeps, max_retries=1) as client, \
            pytest.raises(ExchangeError, match="Timeout") as excinfo:
        client.get_candles_page("BTC-USDT", "1H")
    assert not isinstance(excinfo.value, RateLimitError)
    assert "BTC-USDT" in str(excinfo.value)
    assert len(server.requests) == 2 and sleeps == [1.0]


def test_connection_refused_is_an_exchange_error_after_retries(sleeps):
    with FakeBlofinServer() as srv:
        base_url = srv.base_url  # the port is free again once the server stops
    with BlofinClient(base_url, sleep=sleeps, max_retries=2) as client, \
            pytest.raises(ExchangeError, match="ConnectError"):
        client.get_instruments()
    assert sleeps == [1.0, 2.0]


# --- instruments -----------------------------------------------------------------------
def test_instruments_are_parsed(sleeps):
    df = make_candles(5)
    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): df, ("ETH-USDT", "1H"): df}) as srv, \
            BlofinClient(srv.base_url, sleep=sleeps) as client:
        everything = client.get_instruments()
        one = client.get_instruments("ETH-USDT")
        requests = srv.requests
        with pytest.raises(ExchangeError, match="152014"):
            client.get_instruments("NOPE-USDT")
    assert [item["instId"] for item in everything] == ["BTC-USDT", "ETH-USDT"]
    assert one == [everything[1]]
    assert one[0]["baseCurrency"] == "ETH" and one[0]["state"] == "live" and one[0]["contractValue"] == "0.001"
    assert requests[0].path == INSTRUMENTS_PATH and requests[0].params == {}
    assert requests[1].params == {"instId": "ETH-USDT"}


def test_fake_server_speaks_blofin_wire_format(server, candles):
    """Guards the fake itself: envelope, string fields, newest first, default limit 500."""
    response = httpx.get(server.base_url + CANDLES_PATH, params={"instId": "BTC-USDT", "bar": "1H"})
    body = response.json()
    assert response.status_code == 200 and body["code"] == "0" and body["msg"] == "success"
    assert len(body["data"]) == 500
    first = body["data"][0]
    assert len(first) == 9 and all(isinstance(field, str) for field in first)
    assert int(first[0]) == START_MS + (len(candles) - 1) * HOUR_MS
    assert int(body["data"][0][0]) > int(body["data"][1][0])
    assert float(first[4]) == candles["close"].iloc[-1] and float(first[6]) == candles["volume"].iloc[-1]
    assert json.loads(httpx.get(server.base_url + CANDLES_PATH, params={"bar": "1H"}).text)["code"] == "152001"
