"""The three checks every strategy passes before it is scored: static, sandbox, lookahead.

`check_strategy` runs them in order and stops at the first stage that fails; the
lookahead check runs inside the sandbox child, so untrusted code never executes in the
pipeline's own process. `check_strategy_file` is what the CLI's `check-strategy` calls.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from blofin_pipeline.exceptions import StrategyRejected
from blofin_pipeline.strategies.base import code_hash
from blofin_pipeline.strategies.lookahead import DEFAULT_SAMPLES
from blofin_pipeline.strategies.safety import declared_name, static_check
from blofin_pipeline.strategies.sandbox import run_strategy_in_sandbox
from blofin_pipeline.strategies.testdata import check_candles

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
DEFAULT_CPU_SECONDS = 60
DEFAULT_MEMORY_MB = 1024


@dataclass
class CheckReport:
    """Verdict of the three checks. `reasons` are prefixed with their stage."""

    accepted: bool
    name: str | None
    category: str | None
    reasons: list[str] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        verdict = "ACCEPTED" if self.accepted else "REJECTED"
        lines = [f"strategy {self.name or '<unknown>'!r} ({self.category or '?'}): {verdict}"]
        for stage, info in self.stages.items():
            lines.append(f"  {stage}: {info.get('status')}")
        lines.extend(f"  - {reason}" for reason in self.reasons)
        return "\n".join(lines)


def check_strategy(
    code: str,
    candles: pd.DataFrame | None = None,
    *,
    params: dict | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cpu_seconds: int = DEFAULT_CPU_SECONDS,
    memory_mb: int = DEFAULT_MEMORY_MB,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    origin: str = "<strategy>",
) -> CheckReport:
    """Static check -> sandboxed run -> lookahead check (in the same sandbox child).

    `candles` defaults to the deterministic `check_candles()` frame.
    """
    report = CheckReport(accepted=False, name=declared_name(code), category=None,
                         code_hash=code_hash(code))
    reasons = static_check(code)
    report.stages["static"] = {"status": "failed" if reasons else "passed",
                               "reasons": list(reasons)}
    if reasons:
        report.reasons = [f"static: {r}" for r in reasons]
        report.stages["sandbox"] = {"status": "skipped"}
        report.stages["lookahead"] = {"status": "skipped"}
        return _logged(report)
    if candles is None:
        candles = check_candles()
    try:
        result = run_strategy_in_sandbox(
            code, candles, params, timeout=timeout, cpu_seconds=cpu_seconds,
            memory_mb=memory_mb, lookahead={"n_samples": n_samples, "seed": seed},
            origin=origin,
        )
    except StrategyRejected as err:
        report.name = report.name or err.name
        report.stages["sandbox"] = {"status": "failed", "reasons": list(err.reasons)}
        report.stages["lookahead"] = {"status": "skipped"}
        report.reasons = [f"sandbox: {r}" for r in err.reasons]
        return _logged(report)
    report.name, report.category = result.name, result.category
    report.stages["sandbox"] = {
        "status": "passed", "seconds": round(result.seconds, 3), "bars": len(candles),
        "params": result.params, "exposure": float(result.signals.abs().mean()),
    }
    lookahead = result.lookahead or {}
    if lookahead.get("ok") is True:
        report.stages["lookahead"] = {"status": "passed", **lookahead}
        report.accepted = True
    else:
        detail = lookahead.get("detail") or "lookahead check produced no report"
        report.stages["lookahead"] = {"status": "failed", **lookahead}
        report.reasons = [f"lookahead: {detail}"]
    return _logged(report)


def _logged(report: CheckReport) -> CheckReport:
    if report.accepted:
        log.info("strategy %r accepted", report.name)
    else:
        log.info("strategy %r rejected: %s", report.name, "; ".join(report.reasons))
    return report


def check_strategy_file(path: str | Path, *, as_json: bool = False,
                        candles: pd.DataFrame | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
    """(exit code, printable output) for the `check-strategy` CLI: 0 accepted, 1 rejected."""
    path = Path(path)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        report = CheckReport(accepted=False, name=None, category=None,
                             reasons=[f"file: cannot read {str(path)!r}: {err}"])
    else:
        report = check_strategy(code, candles, timeout=timeout, origin=str(path))
    output = (json.dumps(report.to_dict(), indent=2, default=str) if as_json
              else report.to_text())
    return (0 if report.accepted else 1), output
