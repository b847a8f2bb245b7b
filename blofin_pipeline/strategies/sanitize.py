"""Bounded, sanitised text about a strategy's failure.

Whatever a strategy controls (its exception messages, its declared name, the names it
imports) may end up in a log line, the database or the report only through these
functions: one line, at most `MESSAGE_CHARS` characters, control characters removed and
anything that looks like a credential masked. The sandbox keeps secrets out of the
strategy's reach in the first place; this keeps a strategy from filling our records
with whatever it likes.
"""
from __future__ import annotations

import re

MESSAGE_CHARS = 300   # one error message
REASON_CHARS = 600    # one reason line (a prefix naming the stage + the message)
NAME_CHARS = 64
MASK = "[masked]"

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in URLs (connection URIs such as AIRFLOW_CONN_*)
    (re.compile(r"(://)[^/\s@]*:[^/\s@]*@"), r"\1" + MASK + "@"),
    # name=value / name: value where the name says it is secret
    (re.compile(r"(?i)\b((?:api[_-]?key|key|token|secret|password|passwd|pwd|auth|"
                r"authorization|credentials?)[\"']?\s*[:=]\s*)[\"']?[^\s\"',;]+"),
     r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    # well-known key shapes: Anthropic/OpenAI sk-..., GitHub, Slack, AWS, JWTs, PEM
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), MASK),
    (re.compile(r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{10,}"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{8,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.?[A-Za-z0-9_\-]*"), MASK),
    (re.compile(r"-----BEGIN[^-]*-----"), MASK),
    # long unbroken runs that look random: mixed-case letters and digits, or long hex
    (re.compile(r"(?=[A-Za-z0-9_\-+/=]*\d)(?=[A-Za-z0-9_\-+/=]*[a-z])"
                r"(?=[A-Za-z0-9_\-+/=]*[A-Z])[A-Za-z0-9_\-+/=]{28,}"), MASK),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), MASK),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAME = re.compile(r"[^A-Za-z0-9_.\-@]")


def mask_secrets(text: str) -> str:
    """`text` with everything that looks like a key, token or password replaced."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def safe_text(text: object, limit: int = MESSAGE_CHARS) -> str:
    """One bounded line of untrusted text: no control characters, secrets masked."""
    raw = str(text)[: limit * 4]  # bound the work before the regexes
    line = " ".join(_CONTROL.sub(" ", raw).split())
    line = mask_secrets(line)
    if len(line) > limit:
        line = line[: limit - 3].rstrip() + "..."
    return line


def safe_name(text: object) -> str:
    """A strategy name or label as we may print it: [A-Za-z0-9_.-@], bounded."""
    name = _NAME.sub("_", str(text)[: NAME_CHARS * 2])
    name = mask_secrets(name)
    return name[:NAME_CHARS] or "<unnamed>"


def describe_error(type_name: object, message: object, limit: int = MESSAGE_CHARS) -> str:
    """'ExceptionType: message', both parts sanitised and bounded."""
    kind = re.sub(r"[^A-Za-z0-9_.]", "", str(type_name))[:60] or "Error"
    text = safe_text(message, limit)
    return f"{kind}: {text}" if text else kind


def safe_reason(text: object) -> str:
    """A rejection or failure reason before it is stored, logged or reported."""
    return safe_text(text, REASON_CHARS)
