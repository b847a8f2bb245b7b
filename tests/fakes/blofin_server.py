"""A local HTTP server that speaks BloFin's public market-data wire format, for tests.

    with FakeBlofinServer(candles_by_inst={("BTC-USDT", "1H"): df}) as srv:
        client = BlofinClient(srv.base_url)
        srv.add_fault(Fault.http(429), times=2)   # next two requests get HTTP 429
        ...
        srv.requests                               # what the server received

`df` is a candles DataFrame (UTC "ts" index, open, high, low, close, volume and optionally
volume_quote). The server answers as API-NOTES.md section 1 describes: envelope
{"code": "0", "msg": "success", "data": [...]}, every number a JSON string, candle rows
newest first, `after=ts` rows older than ts, `before=ts` rows newer than ts (alone it
still returns the latest rows), `limit` default 500, max 1440. BloFin has not confirmed
whether after/before are exclusive; `inclusive=True` makes them inclusive so the client
can be tested against both readings.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

CANDLES_PATH = "/api/v1/market/candles"
INSTRUMENTS_PATH = "/api/v1/market/instruments"
DEFAULT_LIMIT = 500
MAX_LIMIT = 1440
BARS = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H", "12H", "1D", "3D", "1W", "1M")
CONTRACT_VALUE = 0.001  # base currency per contract, to derive the `vol` (contracts) field


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. Build with the class methods."""

    status: int = 200
    body: bytes | None = None  # None: the normal response (after `delay`)
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    ignore_after: bool = False  # candles: answer as if `after` were not sent (the latest page)
    price_factor: float = 1.0   # candles: prices of the rows multiplied by this

    @classmethod
    def http(cls, status: int, *, retry_after: float | None = None, body: bytes = b"") -> Fault:
        headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
        return cls(status=status, body=body, headers=headers)

    @classmethod
    def rate_limited(cls, *, retry_after: float | None = None) -> Fault:
        return cls.http(429, retry_after=retry_after,
                        body=b'{"code":"429","msg":"Too Many Requests"}')

    @classmethod
    def banned(cls) -> Fault:
        return cls.http(403, body=b"<html><body>403 Forbidden</body></html>")

    @classmethod
    def code(cls, code: str, msg: str) -> Fault:
        """HTTP 200 with a non-zero envelope code, as BloFin sends most errors."""
        return cls(body=json.dumps({"code": code, "msg": msg, "data": []}).encode())

    @classmethod
    def malformed(cls, body: bytes = b'{"code":"0","msg":"success","data":[["17') -> Fault:
        return cls(body=body)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls.http(status, body=b'{"code":"500","msg":"Internal Server Error"}')

    @classmethod
    def same_page(cls) -> Fault:
        """The latest page whatever `after` says: pagination that never moves backwards."""
        return cls(ignore_after=True)

    @classmethod
    def altered(cls, price_factor: float) -> Fault:
        """The normal rows with other prices: a page that contradicts the pages around it."""
        return cls(price_factor=price_factor)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """The normal response, but only after `seconds` (to trip a client timeout)."""
        return cls(delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    params: dict[str, str]


@dataclass
class _ScriptedFault:
    fault: Fault
    remaining: int | None  # None: forever
    path: str | None


@dataclass
class _State:
    candle_rows: dict[tuple[str, str], list[list[str]]]  # newest first
    instruments: list[dict[str, str]]
    inclusive: bool
    faults: list[_ScriptedFault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class FakeBlofinServer:
    """BloFin on 127.0.0.1 (random port) in a background thread. Use as a context manager."""

    def __init__(
        self,
        candles_by_inst: dict[tuple[str, str], pd.DataFrame] | None = None,
        *,
        unclosed_last: bool = False,
        instruments: list[dict[str, str]] | None = None,
        inclusive: bool = False,
    ) -> None:
        candles_by_inst = candles_by_inst or {}
        rows = {key: candle_rows(df, unclosed_last=unclosed_last) for key, df in candles_by_inst.items()}
        if instruments is None:
            instruments = [instrument(inst_id) for inst_id in sorted({inst for inst, _ in candles_by_inst})]
        self._state = _State(candle_rows=rows, instruments=instruments, inclusive=inclusive)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeBlofinServer:
        state = self._state
        state.stopping.clear()

        class Handler(_Handler):
            pass

        Handler.state = state
        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-blofin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._state.stopping.set()  # wakes up slow replies
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeBlofinServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeBlofinServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting and inspection ----------------------------------------------------
    def add_fault(self, fault: Fault, *, times: int | None = 1, path: str | None = None) -> None:
        """Answer the next `times` requests (None: all of them) to `path` (None: any) with `fault`.

        Faults queue up in the order added; a request takes the first one that applies.
        """
        with self._state.lock:
            self._state.faults.append(_ScriptedFault(fault, times, path))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def candle_requests(self) -> list[RecordedRequest]:
        return [req for req in self.requests if req.path == CANDLES_PATH]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) makes the reply fail with a broken pipe: expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        state = self.state
        with state.lock:
            state.requests.append(RecordedRequest(url.path, params))
            fault = self._take_fault(url.path)
        if fault is not None and fault.delay:
            if state.stopping.wait(fault.delay):
                return
        if fault is not None and fault.body is not None:
            self._send(fault.status, fault.body, fault.headers)
            return
        if url.path == CANDLES_PATH:
            if fault is not None and fault.ignore_after:
                params.pop("after", None)
            body = self._candles(params)
            if fault is not None and fault.price_factor != 1.0:
                body["data"] = [[row[0], *(_num(float(v) * fault.price_factor) for v in row[1:5]), *row[5:]]
                                for row in body.get("data", [])]
        elif url.path == INSTRUMENTS_PATH:
            body = self._instruments(params)
        else:
            self._send(404, b'{"code":"404","msg":"Not Found"}')
            return
        self._send(200, json.dumps(body).encode())

    def _take_fault(self, path: str) -> Fault | None:
        for scripted in self.state.faults:
            if scripted.path is not None and scripted.path != path:
                continue
            if scripted.remaining is not None:
                scripted.remaining -= 1
                if scripted.remaining <= 0:
                    self.state.faults.remove(scripted)
            return scripted.fault
        return None

    def _send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _candles(self, params: dict[str, str]) -> dict[str, Any]:
        inst_id = params.get("instId", "")
        bar = params.get("bar", "1m")
        if not inst_id:
            return _error("152001", "Parameter instId can not be empty.")
        if bar not in BARS:
            return _error("152002", "Parameter bar error.")
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
            after = int(params["after"]) if "after" in params else None
            before = int(params["before"]) if "before" in params else None
        except ValueError:
            return _error("152002", "Parameter error.")
        if not 1 <= limit <= MAX_LIMIT:
            return _error("152002", "Parameter limit error.")
        rows = self.state.candle_rows.get((inst_id, bar))
        if rows is None:
            if not any(inst == inst_id for inst, _ in self.state.candle_rows):
                return _error("152014", "Instrument ID does not exist.")
            rows = []
        inclusive = self.state.inclusive
        selected = [
            row for row in rows
            if (after is None or (int(row[0]) <= after if inclusive else int(row[0]) < after))
            and (before is None or (int(row[0]) >= before if inclusive else int(row[0]) > before))
        ]
        return _ok(selected[:limit])

    def _instruments(self, params: dict[str, str]) -> dict[str, Any]:
        inst_id = params.get("instId")
        items = [item for item in self.state.instruments if inst_id is None or item.get("instId") == inst_id]
        if inst_id is not None and not items:
            return _error("152014", "Instrument ID does not exist.")
        return _ok(items)


def _ok(data: list) -> dict[str, Any]:
    return {"code": "0", "msg": "success", "data": data}


def _error(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def _num(value: float) -> str:
    """A float as BloFin sends it: a string that round-trips exactly."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def candle_rows(df: pd.DataFrame, *, unclosed_last: bool = False) -> list[list[str]]:
    """A candles DataFrame as BloFin rows, newest first; the latest marked forming if asked."""
    ordered = df.sort_index(ascending=False)
    ts_ms = ordered.index.as_unit("ms").asi8
    quote = ordered["volume_quote"] if "volume_quote" in ordered else ordered["volume"] * ordered["close"]
    rows = [
        [str(int(ts)), _num(o), _num(h), _num(lo), _num(c), _num(v / CONTRACT_VALUE), _num(v), _num(q), "1"]
        for ts, o, h, lo, c, v, q in zip(
            ts_ms, ordered["open"], ordered["high"], ordered["low"], ordered["close"], ordered["volume"], quote,
            strict=True,
        )
    ]
    if unclosed_last and rows:
        rows[0][8] = "0"
    return rows


def instrument(inst_id: str) -> dict[str, str]:
    """A live linear SWAP description shaped like BloFin's instruments `data` item."""
    base, _, quote = inst_id.partition("-")
    return {
        "instId": inst_id, "baseCurrency": base, "quoteCurrency": quote, "settleCurrency": quote,
        "contractValue": _num(CONTRACT_VALUE), "listTime": "1638333031000", "expireTime": "1704124800000",
        "maxLeverage": "125", "minSize": "0.1", "lotSize": "0.1", "tickSize": "0.1", "instType": "SWAP",
        "contractType": "linear", "maxLimitSize": "100000000", "maxMarketSize": "1000000", "state": "live",
    }
