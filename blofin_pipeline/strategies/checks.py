"""The three checks every strategy passes before it is scored: static, sandbox, lookahead.

`check_strategy` runs them in order and stops at the first stage that fails. The static
check is a fast first filter with clear messages; the security boundary is the kernel
sandbox (`runner.SandboxedStrategy`): the strategy is loaded and run only in a
locked-down child, and the lookahead gate drives that child from here (each batch of
cuts in one request, a fresh module per cut), so untrusted code never executes in the
pipeline's own process. The lookahead stage is the gate (`gate.run_gate`): the defaults
densely, every walk-forward candidate set and the corners of `param_space` by sampled
cuts. `skip_static=True` (``check-strategy --skip-static``) runs the sandbox and
lookahead stages alone, to show what the kernel holds by itself. `check_strategy_file`
is what the CLI's `check-strategy` calls. Every reason is sanitised and bounded.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from blofin_pipeline.backtest.scoring import candidate_seed
from blofin_pipeline.config import PipelineConfig
from blofin_pipeline.exceptions import StrategyError
from blofin_pipeline.strategies.base import code_hash
from blofin_pipeline.strategies.gate import GateSpans, require_frame, run_gate
from blofin_pipeline.strategies.lookahead import DEFAULT_SAMPLES
from blofin_pipeline.strategies.safety import declared_name, static_check
from blofin_pipeline.strategies.sandbox import SandboxLimits
from blofin_pipeline.strategies.sanitize import safe_name, safe_reason
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
    skip_static: bool = False,
    version: int = 0,
    wf_candidates: int = PipelineConfig.wf_candidates,
    spans: GateSpans = GateSpans(),
) -> CheckReport:
    """Static check -> sandboxed run -> lookahead gate (`gate.run_gate`, in the sandbox).

    `candles` defaults to the deterministic `check_candles()` frame; a frame too short
    for the gate is a DataValidationError (before anything runs). `version` and
    `wf_candidates` give the walk-forward parameter sets the gate checks (those that
    scoring version `version` of the declared name will try). `timeout` and
    `cpu_seconds` bound each call into the strategy (a batch of cuts gets
    `runner.BATCH_CALLS` times as much), `memory_mb` its process.
    """
    declared = declared_name(code)
    report = CheckReport(accepted=False, name=safe_name(declared) if declared else None,
                         category=None, code_hash=code_hash(code))
    frame = check_candles() if candles is None else candles
    require_frame(frame, spans)
    if skip_static:
        report.stages["static"] = {"status": "skipped"}
    elif not _static_stage(report, code):
        return _logged(report)
    limits = SandboxLimits(call_timeout=timeout, call_cpu_seconds=int(cpu_seconds),
                           memory_mb=int(memory_mb), load_timeout=timeout)
    gate = {"n_samples": n_samples, "cut_seed": seed, "n_candidates": wf_candidates, "spans": spans}
    return _logged(_sandbox_stages(report, code, frame, params, limits, origin, (version, gate)))


def _static_stage(report: CheckReport, code: str) -> bool:
    reasons = [safe_reason(r) for r in static_check(code)]
    report.stages["static"] = {"status": "failed" if reasons else "passed",
                               "reasons": list(reasons)}
    if reasons:
        report.reasons = [f"static: {r}" for r in reasons]
        report.stages["sandbox"] = {"status": "skipped"}
        report.stages["lookahead"] = {"status": "skipped"}
    return not reasons


def _sandbox_stages(report: CheckReport, code: str, candles: pd.DataFrame, params: dict | None,
                    limits: SandboxLimits, origin: str, gate: tuple[int, dict[str, Any]]) -> CheckReport:
    """The sandboxed run on `candles`, then the lookahead gate driving the same child."""
    from blofin_pipeline.strategies.runner import SandboxedStrategy

    started = time.monotonic()
    try:
        fn = SandboxedStrategy(code, origin=origin, label=report.name or origin, limits=limits)
    except StrategyError as err:
        return _sandbox_failed(report, err)
    with fn:
        report.name, report.category = fn.name, fn.category
        try:
            signals = fn(candles, params)
        except StrategyError as err:
            return _sandbox_failed(report, err)
        report.stages["sandbox"] = {
            "status": "passed", "seconds": round(time.monotonic() - started, 3),
            "bars": len(candles), "params": {**fn.params, **(params or {})},
            "exposure": float(signals.abs().mean()),
        }
        version, settings = gate
        defaults = {**fn.params, **(params or {})}
        lookahead = run_gate(fn, candles, seed=candidate_seed(fn.name, version), defaults=defaults,
                             **settings).to_dict()
    if lookahead.get("ok") is True:
        report.stages["lookahead"] = {"status": "passed", **lookahead}
        report.accepted = True
    else:
        detail = safe_reason(lookahead.get("detail") or "lookahead check produced no report")
        report.stages["lookahead"] = {"status": "failed", **dict(lookahead, detail=detail)}
        report.reasons = [f"lookahead: {detail}"]
    return report


def _sandbox_failed(report: CheckReport, err: StrategyError) -> CheckReport:
    reason = safe_reason(err)
    report.stages["sandbox"] = {"status": "failed", "reasons": [reason]}
    report.stages["lookahead"] = {"status": "skipped"}
    report.reasons = [f"sandbox: {reason}"]
    return _logged(report)


def _logged(report: CheckReport) -> CheckReport:
    if report.accepted:
        log.info("strategy %r accepted", report.name)
    else:
        log.info("strategy %r rejected: %s", report.name, "; ".join(report.reasons))
    return report


def check_strategy_file(path: str | Path, *, as_json: bool = False,
                        candles: pd.DataFrame | None = None,
                        timeout: float = DEFAULT_TIMEOUT,
                        skip_static: bool = False) -> tuple[int, str]:
    """(exit code, printable output) for the `check-strategy` CLI: 0 accepted, 1 rejected."""
    path = Path(path)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        report = CheckReport(accepted=False, name=None, category=None,
                             reasons=[f"file: cannot read {str(path)!r}: {err}"])
    else:
        report = check_strategy(code, candles, timeout=timeout, origin=str(path),
                                skip_static=skip_static)
    output = (json.dumps(report.to_dict(), indent=2, default=str) if as_json
              else report.to_text())
    return (0 if report.accepted else 1), output
