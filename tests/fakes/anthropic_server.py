"""A local HTTP server speaking the Anthropic Messages API wire format, for tests and demos.

`FakeAnthropicServer` listens on 127.0.0.1 (port 0: the OS picks one) in a thread, answers
`POST /v1/messages` and `GET /v1/models`, and records every request. Replies come from a
scriptable queue (`push_text`, `push_tool_use`, `push_error`, `push_raw`, ...); when the
queue is empty and `auto=True` the server plays a plausible model: it answers design, tune
and review requests (recognised by the tool offered, or by the JSON schema of
`output_config`; anything else gets `{"summary": ...}`) with valid content, e.g. strategy files that follow the contract, so a
whole DAG run can go "online" against it. Token usage is estimated from the request size,
and prompt caching is simulated: a `cache_control` prefix seen before for the same model is
reported as cache read, a new one as cache creation.

Run standalone for a manual DAG run:
    python -m tests.fakes.anthropic_server --port 8765   (auto mode; Ctrl-C to stop)
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class ScriptedReply:
    """One queued answer: HTTP status, body (dict is sent as JSON, bytes as is) and headers."""

    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before answering (client timeouts)


@dataclass
class RecordedRequest:
    """What the server received: method, path, lower-cased headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def api_key(self) -> str | None:
        """The key sent as `x-api-key`, or as `Authorization: Bearer` (what SDK 2.x sends)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    @property
    def user_turns(self) -> list[Any]:
        return [m for m in (self.body or {}).get("messages", []) if m.get("role") == "user"]


def _approx_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(text) // 4)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) closes the socket under a slow reply.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeAnthropicServer:
    """Threaded fake of the Messages API; use as a context manager or call start()/stop()."""

    def __init__(self, *, auto: bool = False, api_key: str | None = None, port: int = 0) -> None:
        self.auto = auto
        self.api_key = api_key
        self._queue: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._cache: set[str] = set()
        self._ids = itertools.count(1)
        self._design_serial = itertools.count(1)
        self.requests: list[RecordedRequest] = []
        self._httpd = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropicServer:
        self._thread = threading.Thread(target=lambda: self._httpd.serve_forever(poll_interval=0.05), name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------
    def push(self, reply: ScriptedReply) -> None:
        with self._lock:
            self._queue.append(reply)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _message(self, content: list[dict[str, Any]], stop_reason: str, usage: dict[str, Any] | None,
                 model: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self._next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model or "",  # empty: filled with the request's model when served
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if usage is not None:
            body["usage"] = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                             "service_tier": "standard", **usage}
        return body

    def push_text(self, text: str, *, usage: dict[str, Any] | None = None, stop_reason: str = "end_turn",
                  thinking: str | None = None, model: str | None = None) -> None:
        """A reply with one text block (optionally preceded by a thinking block)."""
        content: list[dict[str, Any]] = []
        if thinking is not None:
            content.append({"type": "thinking", "thinking": thinking, "signature": "sig_fake"})
        content.append({"type": "text", "text": text})
        self.push(ScriptedReply(200, self._message(content, stop_reason, usage, model)))

    def push_tool_use(self, name: str, tool_input: dict[str, Any], *, usage: dict[str, Any] | None = None,
                      text: str | None = None, model: str | None = None) -> None:
        """A reply calling tool `name` with `tool_input` (optionally after a text block)."""
        content: list[dict[str, Any]] = []
        if text is not None:
            content.append({"type": "text", "text": text})
        content.append({"type": "tool_use", "id": self._next_id("toolu"), "name": name, "input": tool_input})
        self.push(ScriptedReply(200, self._message(content, "tool_use", usage, model)))

    def push_error(self, status: int, message: str = "", *, error_type: str | None = None,
                   retry_after: float | None = None, retry_after_ms: float | None = None,
                   should_retry: bool | None = None) -> None:
        """An error envelope with the API's error type for `status` and a request-id header."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = f"{retry_after_ms:g}"
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        err_type = error_type or ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": err_type, "message": message or err_type.replace("_", " ")}}
        self.push(ScriptedReply(status, body, headers))

    def push_raw(self, body: bytes, *, status: int = 200, content_type: str = "application/json") -> None:
        """Bytes sent as they are, e.g. a malformed JSON body."""
        self.push(ScriptedReply(status, body, {"content-type": content_type}))

    def push_slow(self, delay_s: float) -> None:
        """A reply that arrives after `delay_s` seconds (then a plain text answer)."""
        content = [{"type": "text", "text": '{"summary": "late"}'}]
        self.push(ScriptedReply(200, self._message(content, "end_turn", None, None), delay_s=delay_s))

    # --- serving ---------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str],
                      request_id: str) -> None:
                if isinstance(body, dict):
                    if body.get("type") == "error":
                        body = {**body, "request_id": request_id}
                    payload = json.dumps(body).encode()
                else:
                    payload = body
                self.send_response(status)
                self.send_header("content-type", headers.pop("content-type", "application/json"))
                self.send_header("request-id", request_id)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _record(self) -> RecordedRequest:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                rec = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(rec)
                return rec

            def do_GET(self) -> None:
                rec = self._record()
                request_id = server._next_id("req")
                if rec.path.split("?")[0] == "/v1/models":
                    if not server._authorised(rec):
                        self._send(401, server._error(401, "invalid x-api-key"), {}, request_id)
                        return
                    models = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                              for m in ("claude-opus-5", "claude-sonnet-5", "claude-haiku-4-5")]
                    self._send(200, {"data": models, "has_more": False, "first_id": models[0]["id"],
                                     "last_id": models[-1]["id"]}, {}, request_id)
                    return
                self._send(404, server._error(404, f"no route {rec.path}"), {}, request_id)

            def do_POST(self) -> None:
                rec = self._record()
                request_id = server._next_id("req")
                if rec.path.split("?")[0] != "/v1/messages":
                    self._send(404, server._error(404, f"no route {rec.path}"), {}, request_id)
                    return
                if not server._authorised(rec):
                    self._send(401, server._error(401, "invalid x-api-key"), {}, request_id)
                    return
                status, body, headers = server._answer(rec)
                self._send(status, body, headers, request_id)

        return Handler

    def _authorised(self, rec: RecordedRequest) -> bool:
        return self.api_key is None or rec.api_key == self.api_key

    @staticmethod
    def _error(status: int, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def _answer(self, rec: RecordedRequest) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        request = rec.body if isinstance(rec.body, dict) else {}
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        if scripted is None:
            if not self.auto:
                # x-should-retry false: an unscripted call must fail at once, not loop in SDK retries.
                return 500, self._error(500, "fake server: no scripted reply left"), {"x-should-retry": "false"}
            body = self._auto_reply(request)
            return 200, body, {}
        if scripted.delay_s:
            time.sleep(scripted.delay_s)
        body = scripted.body
        if isinstance(body, dict) and body.get("type") == "message":
            body = dict(body)
            if not body.get("model"):
                body["model"] = request.get("model", "")
            if "usage" not in body:
                body["usage"] = self._usage(request, body["content"])
        return scripted.status, body, dict(scripted.headers)

    # --- usage and caching -------------------------------------------------------------
    def _usage(self, request: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
        """Token counts estimated from sizes; cache_control prefixes cached per model."""
        cached_prefix: list[Any] = []
        prefix: list[Any] = list(request.get("tools") or [])
        system = request.get("system")
        blocks = system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else [])
        for block in blocks:
            prefix.append(block.get("text", ""))
            if block.get("cache_control"):
                cached_prefix = list(prefix)
        total = _approx_tokens(request.get("tools") or []) + sum(_approx_tokens(b.get("text", "")) for b in blocks)
        total += _approx_tokens(request.get("messages") or [])
        cache_read = cache_write = 0
        if cached_prefix:
            cached_tokens = sum(_approx_tokens(p) for p in cached_prefix)
            key = hashlib.sha256(json.dumps([request.get("model"), cached_prefix], sort_keys=True).encode()).hexdigest()
            with self._lock:
                seen = key in self._cache
                self._cache.add(key)
            if seen:
                cache_read = cached_tokens
            else:
                cache_write = cached_tokens
            total = max(1, total - cached_tokens)
        return {
            "input_tokens": total,
            "output_tokens": _approx_tokens(content),
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "service_tier": "standard",
        }

    # --- auto mode: a plausible model ----------------------------------------------------
    def _auto_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        tools = request.get("tools") or []
        fmt = ((request.get("output_config") or {}).get("format") or {})
        schema = tools[0]["input_schema"] if tools else fmt.get("schema") or {}
        kind = _reply_kind(tools[0]["name"] if tools else "", schema)
        user_text = _last_user_text(request)
        if kind == "design":
            payload = self._design_payload(user_text, request)
        elif kind == "tune":
            payload = _tune_payload(user_text)
        elif kind == "review":
            payload = _review_payload(user_text)
        else:
            payload = {"summary": "Fake summary: the pipeline ran, strategies were scored and ranked."}
        if tools:
            content = [{"type": "tool_use", "id": self._next_id("toolu"), "name": tools[0]["name"], "input": payload}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": json.dumps(payload)}]
            stop = "end_turn"
        body = self._message(content, stop, None, request.get("model"))
        body["usage"] = self._usage(request, content)
        return body

    def _design_payload(self, user_text: str, request: dict[str, Any]) -> dict[str, Any]:
        match = re.search(r"Design (\d+) new strateg", user_text)
        n = int(match.group(1)) if match else 3
        serial = next(self._design_serial)
        # Names depend on the prompt (and a serial), so another day's context, or a
        # restarted server, proposes new names instead of ones already tried.
        digest = hashlib.sha256(json.dumps([serial, request.get("system"), request.get("messages")],
                                           sort_keys=True).encode()).hexdigest()[:6]
        strategies = []
        for k in range(n):
            template = STRATEGY_TEMPLATES[k % len(STRATEGY_TEMPLATES)]
            name = f"llm_{template['slug']}_{digest}_{k + 1}"
            code = template["code"].format(cls=_class_name(name), name=name)
            strategies.append({"name": name, "category": template["category"],
                               "rationale": template["rationale"], "code": code})
        return {"strategies": strategies}


def _reply_kind(tool: str, schema: dict[str, Any]) -> str:
    props = set((schema or {}).get("properties", {}))
    if tool == "submit_strategies" or "strategies" in props:
        return "design"
    if tool == "submit_tuning" or "proposals" in props:
        return "tune"
    if tool == "submit_review" or "recommendations" in props:
        return "review"
    return "summary"


def _last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        if texts and not any("rejected by the validator" in t for t in texts):
            return "\n".join(texts)
    first = (request.get("messages") or [{}])[0].get("content", "")
    return first if isinstance(first, str) else json.dumps(first)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _tune_payload(user_text: str) -> dict[str, Any]:
    """One proposal per `## name (category)` section: every parameter moved to mid-range."""
    proposals = []
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^## ([a-z][a-z0-9_]*) \(", user_text, flags=re.MULTILINE):
        brace = user_text.find("{", match.end())
        facts: dict[str, Any] = {}
        if brace != -1:
            try:
                facts, _ = decoder.raw_decode(user_text, brace)
            except json.JSONDecodeError:
                facts = {}
        params: dict[str, Any] = {}
        for param, space in (facts.get("param_space") or {}).items():
            if isinstance(space, list) and len(space) == 2 and all(isinstance(b, (int, float)) for b in space):
                lo, hi = space
                mid = (lo + hi) / 2
                params[param] = int(round(mid)) if isinstance(lo, int) and isinstance(hi, int) else round(mid, 6)
        proposals.append({
            "strategy": match.group(1),
            "params": params,
            "rationale": "Mid-range parameters trade less often, which cuts fee drag.",
            "diagnosis": "Overtrading with fee drag and drawdowns clustered in ranging markets.",
        })
    if not proposals:
        proposals.append({"strategy": "unknown_strategy", "params": {}, "rationale": "n/a", "diagnosis": "n/a"})
    return {"proposals": proposals}


def _review_payload(user_text: str) -> dict[str, Any]:
    names = sorted(set(re.findall(r'"(?:name|strategy)": "([a-z][a-z0-9_]*)"', user_text)))[:3]
    subject = ", ".join(names) if names else "the active strategies"
    return {
        "summary": f"Fake review: {subject} were scored; trend strategies led while ranging symbols lagged.",
        "working": [f"{subject} kept positive out-of-sample Sharpe"],
        "not_working": ["Mean-reversion entries lose money in strong trends"],
        "risks": ["Few trades per walk-forward fold make the Sharpe estimates noisy"],
        "recommendations": ["Add a volatility filter to the mean-reversion family"],
    }


STRATEGY_TEMPLATES: list[dict[str, str]] = [
    {
        "slug": "ema_trend",
        "category": "trend",
        "rationale": "Trend-following with a volatility-scaled EMA spread fills the trend gap in "
                     "trending, high-volatility symbols.",
        "code": '''\
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "trend"
    params = {{"fast": 10, "slow": 40}}
    param_space = {{"fast": (3, 30), "slow": (20, 120)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        fast = close.ewm(span=int(self.params["fast"]), adjust=False).mean()
        slow = close.ewm(span=int(self.params["slow"]), adjust=False).mean()
        signal = pd.Series(np.sign(fast - slow), index=candles.index)
        warm = int(self.params["slow"])
        signal.iloc[:warm] = 0.0
        return signal.fillna(0.0).clip(-1.0, 1.0)
''',
    },
    {
        "slug": "zscore_revert",
        "category": "mean_reversion",
        "rationale": "A rolling z-score fade covers ranging regimes where the portfolio has no "
                     "mean-reversion strategy.",
        "code": '''\
from __future__ import annotations

import numpy as np
import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "mean_reversion"
    params = {{"window": 30, "entry": 1.5}}
    param_space = {{"window": (10, 100), "entry": (0.5, 3.0)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        close = candles["close"]
        window = int(self.params["window"])
        mean = close.rolling(window).mean()
        std = close.rolling(window).std()
        z = (close - mean) / std.replace(0.0, np.nan)
        entry = float(self.params["entry"])
        signal = pd.Series(0.0, index=candles.index)
        signal[z > entry] = -1.0
        signal[z < -entry] = 1.0
        return signal.fillna(0.0)
''',
    },
    {
        "slug": "donchian_break",
        "category": "breakout",
        "rationale": "Donchian channel breakouts catch regime changes out of ranges, a breakout "
                     "gap in the current coverage.",
        "code": '''\
from __future__ import annotations

import pandas as pd

from blofin_pipeline.strategies import Strategy


class {cls}(Strategy):
    name = "{name}"
    category = "breakout"
    params = {{"lookback": 20}}
    param_space = {{"lookback": (5, 100)}}

    def generate_signals(self, candles: pd.DataFrame) -> pd.Series:
        lookback = int(self.params["lookback"])
        upper = candles["high"].rolling(lookback).max().shift(1)
        lower = candles["low"].rolling(lookback).min().shift(1)
        close = candles["close"]
        raw = pd.Series(float("nan"), index=candles.index)
        raw[close > upper] = 1.0
        raw[close < lower] = -1.0
        return raw.ffill().fillna(0.0)
''',
    },
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = FakeAnthropicServer(auto=True, port=args.port).start()
    print(f"fake Anthropic API on {server.base_url} (auto mode); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
