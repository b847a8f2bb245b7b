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
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import pandas as pd

from blofin_pipeline.exceptions import (
    ConfigError,
    ExchangeBanError,
    ExchangeError,
    RateLimitError,
)
from blofin_pipeline.market.blofin_wire import (
    CandleRow,
    body_code,
    candles_frame,
    closed_only,
    describe,
    envelope_data,
    merge_row,
    parse_candle_row,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openapi.blofin.com"
CANDLES_PATH = "/api/v1/market/candles"
INSTRUMENTS_PATH = "/api/v1/market/instruments"
MAX_CANDLES_LIMIT = 1440
RATE_WINDOW_SECONDS = 60.0


class Transient(NamedTuple):
    """A failure worth another attempt: the error to raise when retries run out, why, and
    the server's Retry-After (seconds) if it sent one."""

    error: type[ExchangeError]
    reason: str
    retry_after: float | None = None


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

    Retried, at most `max_retries` times (exponential backoff, `Retry-After` honoured):
    HTTP 429 and body code 429, then `RateLimitError`; HTTP 5xx and body code 500 (the
    exchange's own trouble), timeouts and connection errors, then `ExchangeError`. Never
    retried: HTTP 403 (`ExchangeBanError`: a temporary IP ban that more requests would
    prolong), other non-200 statuses, other body codes, malformed bodies (`ExchangeError`).
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
        return closed_only(rows, inst_id, bar)

    def fetch_candles(self, inst_id: str, bar: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with start_ms <= ts < end_ms as the standard candles DataFrame
        (see :meth:`fetch_candle_span`, whose unfetched span is only logged here)."""
        return self.fetch_candle_span(inst_id, bar, start_ms, end_ms)[0]

    def fetch_candle_span(self, inst_id: str, bar: str, start_ms: int, end_ms: int
                          ) -> tuple[pd.DataFrame, tuple[int, int] | None]:
        """Closed candles with start_ms <= ts < end_ms, and the span [first, end) of that
        range the pagination could not reach (None when it reached start_ms or the
        exchange had no older rows).

        Pages backwards from `end_ms` with `after` = oldest ts received, until `start_ms`
        is reached, the exchange returns no rows, or a page fails to move backwards (an
        exchange that ignores `after`: the rest is the unfetched span). Repeated rows are
        merged, so inclusive and exclusive `after` both work; a time repeated with other
        values is refused (`DataValidationError` naming it), as a CSV's is. Nothing is
        filled in. Columns: open, high, low, close, volume (base currency, volCurrency)
        and volume_quote (volCurrencyQuote).
        """
        if start_ms > end_ms:
            raise ConfigError(f"candles for {inst_id!r} {bar!r}: start_ms {start_ms} is after end_ms {end_ms}")
        by_ts: dict[int, CandleRow] = {}
        after, pages, unfetched = end_ms, 0, None
        while start_ms < end_ms:
            rows = self._get_candle_rows(inst_id, bar, after=after, limit=MAX_CANDLES_LIMIT)
            pages += 1
            if not rows:
                break
            for row in rows:
                merge_row(by_ts, row, inst_id, bar)
            oldest = min(row.ts for row in rows)
            if oldest <= start_ms:
                break
            if oldest >= after:
                unfetched = (start_ms, min(min(by_ts), after))
                log.warning("BloFin candles %s %s: the page with after=%d did not move backwards (oldest ts %d); "
                            "stopped with %d rows, [%d, %d) not fetched", inst_id, bar, after, oldest, len(by_ts),
                            *unfetched)
                break
            after = oldest
        in_range = [row for ts, row in by_ts.items() if start_ms <= ts < end_ms]
        closed = closed_only(in_range, inst_id, bar)
        log.info("BloFin candles %s %s [%d, %d): %d closed candles from %d page(s)",
                 inst_id, bar, start_ms, end_ms, len(closed), pages)
        return candles_frame(closed), unfetched

    def get_instruments(self, inst_id: str | None = None) -> list[dict]:
        """Instrument descriptions (the `data` list), all of them or the one `inst_id`."""
        params = {"instId": inst_id} if inst_id else {}
        what = f"instruments instId={inst_id!r}" if inst_id else "instruments"
        data = self._get(INSTRUMENTS_PATH, params, what)
        if not all(isinstance(item, dict) for item in data):
            raise ExchangeError(f"BloFin {what}: `data` items are not objects ({describe(INSTRUMENTS_PATH, params)})")
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
        return [parse_candle_row(raw, what, CANDLES_PATH, params) for raw in data]

    def _get(self, path: str, params: Mapping[str, Any], what: str) -> list:
        """GET path and return the envelope's `data` list, retrying what is transient."""
        request = describe(path, params)
        attempt = 0
        while True:
            self._limiter.acquire()
            try:
                response = self._http.get(path, params=dict(params))
            except httpx.TransportError as err:
                self._retry_or_raise(attempt, Transient(ExchangeError, f"{type(err).__name__} ({err})"),
                                     what, request, cause=err)
                attempt += 1
                continue
            transient = self._transient(response, what, request)
            if transient is None:
                return envelope_data(response, what, request)
            self._retry_or_raise(attempt, transient, what, request)
            attempt += 1

    def _transient(self, response: httpx.Response, what: str, request: str) -> Transient | None:
        """What to retry a response for; None when it is a 200 to read; raises what is final."""
        status = response.status_code
        if status == 403:
            raise ExchangeBanError(
                f"BloFin {what}: HTTP 403, the exchange firewall banned this IP (typically for "
                f"5 minutes); not retrying ({request}): {response.text[:200]!r}"
            )
        code = body_code(response) if status == 200 else None
        retry_after = retry_after_seconds(response)
        if status == 429 or code == "429":
            if retry_after is not None and retry_after > self.backoff_max:
                raise RateLimitError(
                    f"BloFin {what}: rate-limited, Retry-After {retry_after:.0f} s is longer than "
                    f"backoff_max {self.backoff_max:.0f} s ({request})"
                )
            return Transient(RateLimitError, f"rate-limited (HTTP {status})", retry_after)
        if status >= 500 or code == "500":
            reason = f"HTTP {status}" if status >= 500 else "error code 500 (HTTP 200)"
            return Transient(ExchangeError, f"server error {reason}: {response.text[:120]!r}", retry_after)
        if status != 200:
            raise ExchangeError(f"BloFin {what}: HTTP {status} ({request}): {response.text[:200]!r}")
        return None

    def _retry_or_raise(self, attempt: int, transient: Transient, what: str, request: str,
                        cause: BaseException | None = None) -> None:
        """Back off before the next attempt, or raise once `max_retries` are spent."""
        if attempt >= self.max_retries:
            raise transient.error(
                f"BloFin {what}: {transient.reason} after {attempt + 1} attempt(s) ({request})"
            ) from cause
        self._backoff(attempt, transient.retry_after, what, transient.reason.split(":")[0], request)

    def _backoff(self, attempt: int, retry_after: float | None, what: str, reason: str, request: str) -> None:
        delay = retry_after if retry_after is not None else min(self.backoff_max, self.backoff_base * 2**attempt)
        log.warning("BloFin %s: %s, retry %d/%d in %.2f s (%s)",
                    what, reason, attempt + 1, self.max_retries, delay, request)
        self._sleep(delay)
