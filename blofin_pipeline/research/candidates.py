"""What the research agents hand on: a candidate strategy file, and the seeded draws and
short hashes that make its name reproducible."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from blofin_pipeline.strategies import NAME_MAX, code_hash

_TUNED_SUFFIX = re.compile(r"(_t[0-9a-f]{6})+$")


@dataclass(frozen=True)
class Candidate:
    """A new or tuned strategy file waiting for `backtest_candidates`."""

    name: str
    category: str
    code: str
    rationale: str
    origin: str = "designer"
    parent: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def code_hash(self) -> str:
        return code_hash(self.code)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["code_hash"] = self.code_hash
        return out


def rng_for(seed: int, run_date: str, *parts: object) -> np.random.Generator:
    """A generator seeded by (seed, run date, ...): same inputs, same draws."""
    digest = hashlib.sha256(repr((int(seed), str(run_date), *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def short_hash(text: str, n: int = 6) -> str:
    """The first `n` hex digits of the text's sha256 (the tag in generated and tuned names)."""
    return code_hash(text)[:n]


def tuned_name(parent_name: str, params: Mapping[str, Any], code_change: str = "") -> str:
    """``f"{base}_t{hash6}"`` where base drops earlier _t suffixes; at most NAME_MAX chars."""
    base = _TUNED_SUFFIX.sub("", parent_name)
    digest = short_hash(repr(sorted((k, repr(v)) for k, v in params.items())) + code_change)
    base = base[: NAME_MAX - 8].rstrip("_")
    return f"{base}_t{digest}"


def parent_ref(name: str, version: Any) -> str:
    """``"name@version"``, the parent link of a tuned candidate (the name alone without a version)."""
    return f"{name}@{version}" if version is not None else name
