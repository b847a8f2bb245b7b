"""A small client for BloFin's public market-data REST API (candles, instruments).

Why our own client and not ccxt: ccxt never sends `since` (it filters client-side), pages
100 rows at a time, hides the `confirm` flag that tells a closed candle from a forming
one, and is a heavy import. This client sends `after`/`before`/`limit` itself, keeps only
closed candles and turns every failure into an exception of `blofin_pipeline.exceptions`
that names the symbol, bar and request.

Wire format (shared/API-NOTES.md section 1): envelope {"code": "0", "msg": ..., "data": [...]},
numbers as strings, candle rows newest first as
[ts, open, high, low, close, vol, volCurrency, volCurrencyQuote, confirm].
"""
from __future__ import annotations

import collections
import email.utils
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import numpy as np
import pandas as pd

from blofin_pipeline.exceptions import (
    ConfigError,
    ExchangeBanError,
    ExchangeError,
    RateLimitError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openapi.blofin.com"
CANDLES_PATH = "/api/v1/market/candles"
INSTRUMENTS_PATH = "/api/v1/market/instruments"
MAX_CANDLES_LIMIT = 1440
CANDLE_ROW_LENGTH = 9
RATE_WINDOW_SECONDS = 60.0
CANDLE_COLUMNS = ["open", "high", "low", "close", "volume", "volume_quote"]


class CandleRow(NamedTuple):
    """One parsed candle row. `vol` is in contracts, `vol_currency` in the base currency."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    vol: float
    vol_currency: float
    vol_currency_quote: float
    confirmed: bool


class SlidingWindowLimiter:
    """At most `max_requests` acquisitions in any `window` seconds of `clock`.

    Keeps the times of the recent acquisitions; when the window is full it sleeps until
    the oldest one leaves it. `clock` and `sleep` are injectable so tests never wait.
    """

    def __init__(
        self,
        max_requests: int,
        window: float = RATE_WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1:
            raise ConfigError(f"max_requests_per_minute must be >= 1, got {max_requests}")
        self.max_requests = max_requests
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                while self._times and self._times[0] <= now - self.window:
                    self._times.popleft()
                if len(self._times) < self.max_requests:
                    self._times.append(now)
                    return
                wait = self._times[0] + self.window - now
                log.info("BloFin client-side rate limit reached (%d requests in %.0f s): waiting %.2f s",
                         self.max_requests, self.window, wait)
                self._sleep(wait)


class BlofinClient:
    """BloFin public market data over HTTP, with a client-side rate limiter and backoff.

    Retried (exponential backoff, `Retry-After` honoured): HTTP 429 and body code 429, then
    `RateLimitError`; timeouts and connection errors, then `ExchangeError`. Never retried:
    HTTP 403 (`ExchangeBanError`: a temporary IP ban that more requests would prolong),
    other non-200 statuses, body codes other than "0", malformed bodies (`ExchangeError`).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_requests_per_minute: int = 400,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if backoff_base < 0 or backoff_max < 0:
            raise ConfigError(f"backoff_base and backoff_max must be >= 0, got {backoff_base}, {backoff_max}")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._limiter = SlidingWindowLimiter(max_requests_per_minute, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    # --- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BlofinClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- public API ------------------------------------------------------------------
    def get_candles_page(
        self,
        inst_id: str,
        bar: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = MAX_CANDLES_LIMIT,
    ) -> list[CandleRow]:
        """One page of CLOSED candles, newest first as BloFin sends them.

        `after=ts`: rows older than ts; `before=ts`: rows newer than ts. Forming candles
        (confirm "0") are dropped and counted in the log.
        """
        rows = self._get_candle_rows(inst_id, bar, after=after, before=before, limit=limit)
        return _closed_only(rows, inst_id, bar)

    def fetch_candles(self, inst_id: str, bar: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with start_ms <= ts < end_ms as the standard candles DataFrame.

        Pages backwards from `end_ms` with `after` = oldest ts received, until `start_ms`
        is reached, the exchange returns no rows, or a page fails to move backwards.
        Overlapping pages are de-duplicated, so inclusive and exclusive `after` both work.
        Nothing is filled in: missing candles stay missing. Columns: open, high, low,
        close, volume (base currency, volCurrency) and volume_quote (volCurrencyQuote).
        """
        if start_ms > end_ms:
            raise ConfigError(f"candles for {inst_id!r} {bar!r}: start_ms {start_ms} is after end_ms {end_ms}")
        by_ts: dict[int, CandleRow] = {}
        after = end_ms
        pages = 0
        while start_ms < end_ms:
            rows = self._get_candle_rows(inst_id, bar, after=after, limit=MAX_CANDLES_LIMIT)
            pages += 1
            if not rows:
                break
            for row in rows:
                by_ts.setdefault(row.ts, row)
            oldest = min(row.ts for row in rows)
            if oldest <= start_ms:
                break
            if oldest >= after:
                log.warning(
                    "BloFin candles %s %s: page with after=%d did not move backwards (oldest ts %d); "
                    "stopping pagination with %d rows",
                    inst_id, bar, after, oldest, len(by_ts),
                )
                break
            after = oldest
        in_range = [row for ts, row in by_ts.items() if start_ms <= ts < end_ms]
        closed = _closed_only(in_range, inst_id, bar)
        log.info("BloFin candles %s %s [%d, %d): %d closed candles from %d page(s)",
                 inst_id, bar, start_ms, end_ms, len(closed), pages)
        return candles_frame(closed)

    def get_instruments(self, inst_id: str | None = None) -> list[dict]:
        """Instrument descriptions (the `data` list), all of them or the one `inst_id`."""
        params = {"instId": inst_id} if inst_id else {}
        what = f"instruments instId={inst_id!r}" if inst_id else "instruments"
        data = self._get(INSTRUMENTS_PATH, params, what)
        if not all(isinstance(item, dict) for item in data):
            raise ExchangeError(f"BloFin {what}: `data` items are not objects ({_describe(INSTRUMENTS_PATH, params)})")
        return data

    # --- internals -------------------------------------------------------------------
    def _get_candle_rows(
        self, inst_id: str, bar: str, *, after: int | None, before: int | None = None, limit: int
    ) -> list[CandleRow]:
        if not inst_id or not bar:
            raise ConfigError(f"candles need an instId and a bar, got instId={inst_id!r} bar={bar!r}")
        if not 1 <= limit <= MAX_CANDLES_LIMIT:
            raise ConfigError(
                f"candles for {inst_id!r} {bar!r}: limit must be in 1..{MAX_CANDLES_LIMIT}, got {limit}"
            )
        params: dict[str, Any] = {"instId": inst_id, "bar": bar}
        if after is not None:
            params["after"] = int(after)
        if before is not None:
            params["before"] = int(before)
        params["limit"] = limit
        what = f"candles instId={inst_id!r} bar={bar!r}"
        data = self._get(CANDLES_PATH, params, what)
        return [_parse_candle_row(raw, what, CANDLES_PATH, params) for raw in data]

    def _get(self, path: str, params: Mapping[str, Any], what: str) -> list:
        """GET path and return the envelope's `data` list, retrying what is transient."""
        request = _describe(path, params)
        attempt = 0
        while True:
            self._limiter.acquire()
            try:
                response = self._http.get(path, params=dict(params))
            except httpx.TransportError as err:
                if attempt >= self.max_retries:
                    raise ExchangeError(
                        f"BloFin {what}: {type(err).__name__} ({err}) after {attempt + 1} attempt(s) ({request})"
                    ) from err
                self._backoff(attempt, None, what, f"{type(err).__name__}", request)
                attempt += 1
                continue

            if response.status_code == 403:
                raise ExchangeBanError(
                    f"BloFin {what}: HTTP 403, the exchange firewall banned this IP (typically for "
                    f"5 minutes); not retrying ({request}): {response.text[:200]!r}"
                )
            body_code = _body_code(response) if response.status_code == 200 else None
            if response.status_code == 429 or body_code == "429":
                if attempt >= self.max_retries:
                    raise RateLimitError(
                        f"BloFin {what}: rate-limited (HTTP {response.status_code}) after "
                        f"{attempt + 1} attempt(s) ({request})"
                    )
                retry_after = _retry_after_seconds(response)
                if retry_after is not None and retry_after > self.backoff_max:
                    raise RateLimitError(
                        f"BloFin {what}: rate-limited, Retry-After {retry_after:.0f} s is longer than "
                        f"backoff_max {self.backoff_max:.0f} s ({request})"
                    )
                self._backoff(attempt, retry_after, what, f"HTTP {response.status_code}", request)
                attempt += 1
                continue
            if response.status_code != 200:
                raise ExchangeError(
                    f"BloFin {what}: HTTP {response.status_code} ({request}): {response.text[:200]!r}"
                )
            return _envelope_data(response, what, request)

    def _backoff(self, attempt: int, retry_after: float | None, what: str, reason: str, request: str) -> None:
        delay = retry_after if retry_after is not None else min(self.backoff_max, self.backoff_base * 2**attempt)
        log.warning("BloFin %s: %s, retry %d/%d in %.2f s (%s)",
                    what, reason, attempt + 1, self.max_retries, delay, request)
        self._sleep(delay)


# --- parsing helpers (pure) ---------------------------------------------------------
def _describe(path: str, params: Mapping[str, Any]) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"GET {path}" + (f"?{query}" if query else "")


def _body_code(response: httpx.Response) -> str | None:
    """The envelope's `code` as a string, or None when the body is not a JSON object."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and "code" in body:
        return str(body["code"])
    return None


def _envelope_data(response: httpx.Response, what: str, request: str) -> list:
    try:
        body = response.json()
    except ValueError as err:
        raise ExchangeError(
            f"BloFin {what}: body is not JSON ({request}): {response.text[:200]!r}"
        ) from err
    if not isinstance(body, dict) or "code" not in body:
        raise ExchangeError(f"BloFin {what}: body is not a {{code, msg, data}} envelope ({request}): {str(body)[:200]!r}")
    code = str(body["code"])
    if code != "0":
        raise ExchangeError(f"BloFin {what}: error code {code}: {body.get('msg', '')!s} ({request})")
    data = body.get("data")
    if not isinstance(data, list):
        raise ExchangeError(f"BloFin {what}: `data` is {type(data).__name__}, expected a list ({request})")
    return data


def _parse_candle_row(raw: object, what: str, path: str, params: Mapping[str, Any]) -> CandleRow:
    if not isinstance(raw, list) or len(raw) != CANDLE_ROW_LENGTH:
        raise ExchangeError(
            f"BloFin {what}: candle row {raw!r} is not a list of {CANDLE_ROW_LENGTH} fields "
            f"({_describe(path, params)})"
        )
    confirm = str(raw[8])
    if confirm not in ("0", "1"):
        raise ExchangeError(f"BloFin {what}: candle row {raw!r} has confirm {confirm!r}, expected '0' or '1' "
                            f"({_describe(path, params)})")
    try:
        ts = int(raw[0])
        values = [float(field) for field in raw[1:8]]
    except (TypeError, ValueError) as err:
        raise ExchangeError(
            f"BloFin {what}: candle row {raw!r} has a non-numeric field ({_describe(path, params)})"
        ) from err
    return CandleRow(ts, *values, confirmed=confirm == "1")


def _closed_only(rows: list[CandleRow], inst_id: str, bar: str) -> list[CandleRow]:
    closed = [row for row in rows if row.confirmed]
    if len(closed) < len(rows):
        log.info("BloFin candles %s %s: dropped %d unclosed candle(s) (confirm=0)",
                 inst_id, bar, len(rows) - len(closed))
    return closed


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        log.warning("ignoring unreadable Retry-After header %r", value)
        return None
    return max(0.0, when.timestamp() - time.time())


def candles_frame(rows: list[CandleRow]) -> pd.DataFrame:
    """Rows (any order, unique ts) -> candles DataFrame: UTC "ts" index ascending, float64 columns."""
    rows = sorted(rows, key=lambda row: row.ts)
    index = pd.to_datetime(np.array([row.ts for row in rows], dtype="int64"), unit="ms", utc=True)
    index.name = "ts"
    columns = {
        "open": [row.open for row in rows],
        "high": [row.high for row in rows],
        "low": [row.low for row in rows],
        "close": [row.close for row in rows],
        "volume": [row.vol_currency for row in rows],
        "volume_quote": [row.vol_currency_quote for row in rows],
    }
    return pd.DataFrame({name: np.array(values, dtype="float64") for name, values in columns.items()},
                        index=index)[CANDLE_COLUMNS]
