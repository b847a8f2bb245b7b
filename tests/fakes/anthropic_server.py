"""A local HTTP server speaking the Anthropic Messages API wire format, for tests and demos.

`FakeAnthropicServer` listens on 127.0.0.1 (port 0: the OS picks one) in a thread and
records every request. It answers:
- `POST /v1/messages` (JSON, or server-sent events when `stream` is true), `GET /v1/models`;
- the Message Batches endpoints (`tests.fakes.batches`), in the official shapes.

Replies come from a scriptable queue (`push_text`, `push_tool_use`, `push_error`,
`push_raw`, ...). When the queue is empty the model plays one of two parts:
- `auto=True` (plausible): design, tune and review get sensible content (`model_replies`);
- `schema=True`: it answers whatever tool schema it is sent with random values the schema
  allows (`schema_values.SchemaFaker`, seeded by `seed`), nothing hand-picked.
Otherwise an unscripted request gets a 500 that the SDK does not retry.

Like the real API it checks the request (model, max_tokens, messages; no forced tool use
for the models that reject it), applies the documented prompt-caching rules
(`prompt_cache`: breakpoints, minimum cacheable length per model, prefix matching over
tools -> system -> messages, TTL), and sends a `request-id` header (`fixed_request_id`:
the same one on every answer, as a misbehaving proxy might). `down=True` makes every
message request fail with 529 overloaded, as an outage would.

Run standalone for a manual DAG run:
    python -m tests.fakes.anthropic_server --port 8765 [--schema]   (Ctrl-C to stop)
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.batches import BatchStore
from tests.fakes.model_replies import pick_tool, plausible_payload, reply_schema
from tests.fakes.prompt_cache import CacheRuleError, PromptCache, approx_tokens
from tests.fakes.schema_values import SchemaFaker
from tests.fakes.sse import message_events

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 409: "conflict_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5", "claude-sonnet-5",
          "claude-haiku-4-5")
#: Documented to answer 400 to tool_choice any/tool.
NO_FORCED_TOOL_USE = ("claude-opus-5-5", "claude-sonnet-5-5")


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


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) closes the socket under a slow reply.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}


class FakeAnthropicServer:
    """Threaded fake of the Messages API; use as a context manager or call start()/stop()."""

    def __init__(self, *, auto: bool = False, schema: bool = False, seed: int = 0, api_key: str | None = None,
                 port: int = 0, fixed_request_id: str | None = None, min_cache_tokens: dict[str, int] | None = None,
                 batch_delay_s: float = 0.0, down: bool = False) -> None:
        self.auto = auto
        self.schema = schema
        self.faker = SchemaFaker(seed)
        self.api_key = api_key
        self.fixed_request_id = fixed_request_id
        self.down = down
        self.cache = PromptCache(min_tokens=min_cache_tokens)
        self.batches = BatchStore(self._answer_params, lambda: self.base_url, delay_s=batch_delay_s)
        self._queue: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._serial = itertools.count(1)
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
        self._thread = threading.Thread(target=lambda: self._httpd.serve_forever(poll_interval=0.05),
                                        name="fake-anthropic", daemon=True)
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
        body: dict[str, Any] = {"id": self._next_id("msg"), "type": "message", "role": "assistant",
                                "model": model or "",  # empty: filled with the request's model when served
                                "content": content, "stop_reason": stop_reason, "stop_sequence": None}
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

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                request_id = server.fixed_request_id or server._next_id("req")
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

            def _serve(self) -> None:
                rec = self._record()
                if not server._authorised(rec):
                    self._send(401, _error(401, "invalid x-api-key"), {})
                    return
                self._send(*server._route(rec))

            do_GET = do_POST = do_DELETE = _serve

        return Handler

    def _authorised(self, rec: RecordedRequest) -> bool:
        return self.api_key is None or rec.api_key == self.api_key

    def _route(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        path = rec.path.split("?")[0]
        if rec.method == "GET" and path == "/v1/models":
            models = [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                      for m in MODELS]
            return 200, {"data": models, "has_more": False, "first_id": models[0]["id"],
                         "last_id": models[-1]["id"]}, {}
        if path.startswith("/v1/messages/batches"):
            status, body, content_type = self.batches.route(rec.method, path, rec.body)
            return status, body, {"content-type": content_type}
        if rec.method == "POST" and path == "/v1/messages":
            return self._answer(rec.body if isinstance(rec.body, dict) else {})
        return 404, _error(404, f"no route {rec.method} {rec.path}"), {}

    # --- answering ---------------------------------------------------------------------
    def _answer_params(self, request: dict[str, Any]) -> tuple[int, Any]:
        """A batch request's answer (status, body): as a direct one, never streamed."""
        status, body, _ = self._answer({**request, "stream": False})
        return status, body

    def _invalid(self, request: dict[str, Any]) -> str | None:
        """Why the API would answer 400, or None."""
        missing = [k for k in ("model", "max_tokens", "messages") if not request.get(k)]
        if missing:
            return f"{', '.join(missing)}: Field required"
        choice = (request.get("tool_choice") or {}).get("type")
        if choice in ("any", "tool") and str(request["model"]).startswith(NO_FORCED_TOOL_USE):
            return f"tool_choice.type {choice!r} is not supported by {request['model']}: use 'auto'"
        return None

    def _answer(self, request: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        problem = self._invalid(request)
        if problem:
            return 400, _error(400, problem), {}
        if self.down:
            return 529, _error(529, "Overloaded"), {"retry-after-ms": "5"}
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        if scripted is None and not (self.auto or self.schema):
            # x-should-retry false: an unscripted call must fail at once, not loop in SDK retries.
            return 500, _error(500, "fake server: no scripted reply left"), {"x-should-retry": "false"}
        if scripted is not None and scripted.delay_s:
            time.sleep(scripted.delay_s)
        if scripted is not None and (scripted.status != 200 or not isinstance(scripted.body, dict)):
            return scripted.status, scripted.body, dict(scripted.headers)
        body = dict(scripted.body) if scripted is not None else self._model_reply(request)
        try:
            body = self._with_usage(request, body)
        except CacheRuleError as err:
            return 400, _error(400, str(err)), {}
        headers = dict(scripted.headers) if scripted is not None else {}
        if request.get("stream"):
            return 200, message_events(body), {**headers, "content-type": "text/event-stream"}
        return 200, body, headers

    def _with_usage(self, request: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") != "message":
            return body
        body = {**body, "model": body.get("model") or request.get("model", "")}
        usage = self.cache.usage(request)  # the caching rules apply (and write) on every answer
        if "usage" not in body:
            body["usage"] = {**usage, "output_tokens": approx_tokens(body.get("content") or []),
                             "service_tier": "standard"}
        return body

    def _model_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        tool = pick_tool(request)
        if self.schema:
            with self._lock:
                payload = self.faker.value(reply_schema(request, tool))
        else:
            payload = plausible_payload(request, tool, next(self._serial))
        if tool is not None:
            content = [{"type": "tool_use", "id": self._next_id("toolu"), "name": tool["name"], "input": payload}]
            return self._message(content, "tool_use", None, request.get("model"))
        content = [{"type": "text", "text": json.dumps(payload)}]
        return self._message(content, "end_turn", None, request.get("model"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--schema", action="store_true", help="schema-valid random answers instead of plausible ones")
    args = parser.parse_args()
    server = FakeAnthropicServer(auto=not args.schema, schema=args.schema, port=args.port).start()
    print(f"fake Anthropic API on {server.base_url} ({'schema' if args.schema else 'auto'} mode); Ctrl-C to stop",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
