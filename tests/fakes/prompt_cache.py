"""The documented prompt-caching rules, as the fake Messages API applies them.

- The prompt is one sequence of blocks in the order tools -> system -> messages (each
  tool, each system text block, each content block of each message).
- A block with `cache_control` is a breakpoint; a top-level `cache_control` marks the last
  block. At most 4 breakpoints (400 otherwise); a `1h` breakpoint may not follow a `5m` one
  (400 otherwise).
- A prefix is cached only if it reaches the model's minimum cacheable length; below it
  nothing is written and no error is raised.
- Hits are exact: the whole prefix up to a breakpoint must be byte-identical, for the same
  model (and, for message blocks, the same `tool_choice`). Each breakpoint also finds an
  entry written at one of the up to 20 blocks before it.
- An entry lives `ttl` (5 minutes by default, or 1 hour) from its last use; a read
  refreshes it. Only answered requests write.
- usage: `cache_read_input_tokens` is the longest prefix found, `cache_creation_input_tokens`
  what the breakpoints after it wrote (split by TTL in `cache_creation`), `input_tokens` the
  rest.

Token counts are estimated from the JSON size (`approx_tokens`), so they are stable but
not the real tokenizer's.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20

#: Minimum cacheable prompt length by model (prefix match on the id). Opus 5 512, Sonnet 5
#: 1024, Haiku 4.5 and Opus 4.5/4.6 4096 (documented); the 5.5 models are not documented:
#: 1024 here, overridable per server.
MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-opus-5-5": 1024, "claude-sonnet-5-5": 1024, "claude-haiku-5-5": 1024, "claude-opus-5": 512,
    "claude-sonnet-5": 1024, "claude-fable-5": 512, "claude-mythos-5": 512, "claude-haiku-4-5": 4096,
    "claude-opus-4-6": 4096, "claude-opus-4-5": 4096, "claude-sonnet-4": 1024, "claude-opus-4": 1024,
}
DEFAULT_MIN_TOKENS = 1024


class CacheRuleError(ValueError):
    """The request breaks a caching rule: the API answers 400 invalid_request_error."""


def approx_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(text) // 4)


def min_tokens_for(model: str, table: dict[str, int]) -> int:
    matches = [key for key in table if model == key or model.startswith(key + "-")]
    return table[max(matches, key=len)] if matches else DEFAULT_MIN_TOKENS


@dataclass
class Block:
    """One cacheable unit of the prompt: its content key, size and breakpoint TTL (if any)."""

    key: Any
    tokens: int
    ttl: str | None


def _strip(block: Any) -> tuple[Any, str | None]:
    if not isinstance(block, dict):
        return block, None
    control = block.get("cache_control")
    content = {k: v for k, v in block.items() if k != "cache_control"}
    return content, (control.get("ttl") or "5m") if isinstance(control, dict) else None


def prompt_blocks(request: dict[str, Any]) -> list[Block]:
    """The request's blocks in cache order, each with its breakpoint TTL."""
    blocks: list[Block] = []
    for tool in request.get("tools") or []:
        content, ttl = _strip(tool)
        blocks.append(Block(("tool", content), approx_tokens(content), ttl))
    system = request.get("system")
    for block in ([{"type": "text", "text": system}] if isinstance(system, str) else system or []):
        content, ttl = _strip(block)
        blocks.append(Block(("system", content), approx_tokens(content.get("text", content)), ttl))
    choice = json.dumps(request.get("tool_choice"), sort_keys=True)
    for message in request.get("messages") or []:
        parts = message.get("content")
        for part in ([{"type": "text", "text": parts}] if isinstance(parts, str) else parts or []):
            content, ttl = _strip(part)
            blocks.append(Block(("message", message.get("role"), choice, content), approx_tokens(content), ttl))
    if isinstance(request.get("cache_control"), dict) and blocks:
        blocks[-1].ttl = request["cache_control"].get("ttl") or "5m"
    return blocks


class PromptCache:
    """Cache entries of one fake API organisation, keyed by model and prefix hash."""

    def __init__(self, *, min_tokens: dict[str, int] | None = None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.min_tokens = {**MIN_CACHEABLE_TOKENS, **(min_tokens or {})}
        self.clock = clock
        self._entries: dict[str, tuple[float, str]] = {}  # key -> (expires at, ttl)
        self._lock = threading.Lock()

    @staticmethod
    def check(request: dict[str, Any]) -> list[Block]:
        """The blocks, after the rules a request can break (CacheRuleError)."""
        blocks = prompt_blocks(request)
        ttls = [b.ttl for b in blocks if b.ttl]
        if len(ttls) > MAX_BREAKPOINTS:
            raise CacheRuleError(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                 f"Found {len(ttls)}.")
        if any(a == "5m" and b == "1h" for a, b in zip(ttls, ttls[1:])):
            raise CacheRuleError("a cache_control block with ttl='1h' cannot come after one with ttl='5m'")
        for ttl in ttls:
            if ttl not in TTL_SECONDS:
                raise CacheRuleError(f"cache_control.ttl must be '5m' or '1h', got {ttl!r}")
        return blocks

    def _key(self, model: str, blocks: list[Block]) -> str:
        return hashlib.sha256(json.dumps([model, [b.key for b in blocks]], sort_keys=True, default=str).encode()
                              ).hexdigest()

    def usage(self, request: dict[str, Any], *, write: bool = True) -> dict[str, Any]:
        """The request's input token usage under the rules; writes its entries when `write`."""
        model = str(request.get("model"))
        blocks = self.check(request)
        total = sum(b.tokens for b in blocks)
        prefix_tokens = [sum(b.tokens for b in blocks[: i + 1]) for i in range(len(blocks))]
        breakpoints = [i for i, b in enumerate(blocks) if b.ttl]
        minimum = min_tokens_for(model, self.min_tokens)
        now = self.clock()
        with self._lock:
            hit = self._longest_hit(model, blocks, breakpoints, now)
            read = prefix_tokens[hit] if hit is not None else 0
            written = {"5m": 0, "1h": 0}
            done = read
            for i in breakpoints:
                if (hit is not None and i <= hit) or prefix_tokens[i] < minimum:
                    continue
                written[blocks[i].ttl] += prefix_tokens[i] - done  # type: ignore[index]
                done = prefix_tokens[i]
                if write:
                    self._entries[self._key(model, blocks[: i + 1])] = (now + TTL_SECONDS[blocks[i].ttl], blocks[i].ttl)
        creation = written["5m"] + written["1h"]
        return {"input_tokens": max(0, total - read - creation), "cache_read_input_tokens": read,
                "cache_creation_input_tokens": creation,
                "cache_creation": {"ephemeral_5m_input_tokens": written["5m"],
                                   "ephemeral_1h_input_tokens": written["1h"]}}

    def _longest_hit(self, model: str, blocks: list[Block], breakpoints: list[int], now: float) -> int | None:
        """Index of the last block of the longest live cached prefix (refreshed), or None."""
        for bp in reversed(breakpoints):
            for end in range(bp, max(-1, bp - LOOKBACK_BLOCKS - 1), -1):
                key = self._key(model, blocks[: end + 1])
                entry = self._entries.get(key)
                if entry is not None and entry[0] >= now:
                    self._entries[key] = (now + TTL_SECONDS[entry[1]], entry[1])
                    return end
        return None
