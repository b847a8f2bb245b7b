"""A complete Messages API answer as the server-sent events of a streamed request.

message_start (the message without content, output_tokens 1), then per content block
content_block_start / content_block_delta (text_delta, input_json_delta in small pieces,
thinking_delta + signature_delta) / content_block_stop, then message_delta (stop reason,
output tokens) and message_stop: the shape the SDK's `messages.stream` accumulates.
"""
from __future__ import annotations

import json
from typing import Any

CHUNK = 64  # characters per delta


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _pieces(text: str) -> list[str]:
    return [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    kind = block.get("type")
    if kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]))]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block.get("thinking", ""))]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block.get("text", ""))]
    out = [_event("content_block_start", {"index": index, "content_block": start})]
    out += [_event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
    out.append(_event("content_block_stop", {"index": index}))
    return out


def message_events(message: dict[str, Any]) -> bytes:
    """The SSE body of `message` (a complete `message` object)."""
    usage = dict(message.get("usage") or {})
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1}}
    parts = [_event("message_start", {"message": head})]
    for index, block in enumerate(message.get("content") or []):
        parts += _block_events(index, block)
    parts.append(_event("message_delta", {
        "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")},
        "usage": {"output_tokens": usage.get("output_tokens", 0)}}))
    parts.append(_event("message_stop", {}))
    return b"".join(parts)
