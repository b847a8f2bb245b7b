"""Message Batches for the fake API, in the official shapes.

`POST /v1/messages/batches` takes ``{"requests": [{"custom_id", "params"}]}`` and returns a
`message_batch` object; `GET /v1/messages/batches/{id}` its state; `POST .../{id}/cancel`
cancels it; `GET .../{id}/results` streams the results as JSON Lines
(``{"custom_id", "result": {"type": "succeeded", "message": {...}}}``, or `errored` with
the error envelope, `canceled`, `expired`); `GET /v1/messages/batches` lists them.

A batch ends `delay_s` seconds after it was created (0: at the first look): then each
request is answered, in order, by the server's own answer function (so the scripted queue,
the fake model and the prompt cache apply to batch requests as to direct ones) with
`service_tier` "batch". A batch can be told to never end (`hold=True`), to test timeouts.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

Answer = Callable[[dict[str, Any]], tuple[int, Any]]


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@dataclass
class FakeBatch:
    id: str
    requests: list[dict[str, Any]]
    created: datetime
    ends_at: float
    hold: bool = False
    status: str = "in_progress"
    ended: datetime | None = None
    cancel_initiated: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        kinds = [r["result"]["type"] for r in self.results]
        processing = len(self.requests) if self.status != "ended" else 0
        return {"processing": processing, **{k: kinds.count(k) for k in ("succeeded", "errored", "canceled",
                                                                         "expired")}}


class BatchStore:
    """The fake API's batches; `answer(params) -> (status, body)` answers one request."""

    def __init__(self, answer: Answer, base_url: Callable[[], str], *, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.base_url = base_url
        self.delay_s = delay_s
        self.hold = False
        self._batches: dict[str, FakeBatch] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    @property
    def batches(self) -> list[FakeBatch]:
        with self._lock:
            return list(self._batches.values())

    def create(self, body: Any) -> tuple[int, dict[str, Any]]:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not requests or not all(isinstance(r, dict) and r.get("custom_id") and isinstance(r.get("params"), dict)
                                   for r in requests):
            return 400, _error("requests: a non-empty list of {custom_id, params} is required")
        ids = [r["custom_id"] for r in requests]
        if len(set(ids)) != len(ids):
            return 400, _error("custom_id values must be unique within a batch")
        with self._lock:
            batch = FakeBatch(f"msgbatch_fake{next(self._ids):06d}", list(requests), datetime.now(timezone.utc),
                              time.monotonic() + self.delay_s, hold=self.hold)
            self._batches[batch.id] = batch
        return 200, self.view(batch)

    def get(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None:
                self._advance(batch)
            return batch

    def _advance(self, batch: FakeBatch) -> None:
        if batch.status == "canceling":
            self._finish(batch, canceled=True)
        elif batch.status == "in_progress" and not batch.hold and time.monotonic() >= batch.ends_at:
            self._finish(batch, canceled=False)

    def _finish(self, batch: FakeBatch, *, canceled: bool) -> None:
        for request in batch.requests:
            result: dict[str, Any]
            if canceled:
                result = {"type": "canceled"}
            else:
                status, body = self.answer(dict(request["params"]))
                if status == 200 and isinstance(body, dict) and body.get("type") == "message":
                    body.setdefault("usage", {})["service_tier"] = "batch"
                    result = {"type": "succeeded", "message": body}
                else:
                    envelope = body if isinstance(body, dict) else _error("malformed answer", "api_error")
                    result = {"type": "errored", "error": envelope}
            batch.results.append({"custom_id": request["custom_id"], "result": result})
        batch.status = "ended"
        batch.ended = datetime.now(timezone.utc)

    def cancel(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_initiated = datetime.now(timezone.utc)
            return batch

    def view(self, batch: FakeBatch) -> dict[str, Any]:
        """The `message_batch` object."""
        ended = batch.status == "ended"
        return {
            "id": batch.id, "type": "message_batch", "processing_status": batch.status,
            "request_counts": batch.counts(), "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + timedelta(hours=24)),
            "ended_at": _iso(batch.ended) if batch.ended else None, "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancel_initiated) if batch.cancel_initiated else None,
            "results_url": f"{self.base_url()}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def results_jsonl(self, batch: FakeBatch) -> bytes:
        return b"".join(json.dumps(r).encode() + b"\n" for r in batch.results)

    def listing(self) -> dict[str, Any]:
        data = [self.view(b) for b in reversed(self.batches)]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any, str]:
        """(status, body, content type) of a batches request."""
        parts = path.strip("/").split("/")[3:]  # after v1/messages/batches
        if method == "POST" and not parts:
            status, payload = self.create(body)
            return status, payload, "application/json"
        if method == "GET" and not parts:
            return 200, self.listing(), "application/json"
        batch = self.cancel(parts[0]) if method == "POST" and parts[1:] == ["cancel"] else self.get(parts[0])
        if batch is None:
            return 404, _error(f"batch {parts[0]} not found", "not_found_error"), "application/json"
        if method == "GET" and parts[1:] == ["results"]:
            if batch.status != "ended":
                return 400, _error(f"batch {batch.id} has not ended"), "application/json"
            return 200, self.results_jsonl(batch), "application/binary"
        return 200, self.view(batch), "application/json"


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
