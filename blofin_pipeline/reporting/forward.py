"""The forward table and the day's signals, as the report, its HTML page and the CLI show them.

:func:`forward_section`: per strategy kept by the date's ranking or tracked on that date,
its forward record since promotion (days, return, Sharpe, worst drawdown, probabilistic
Sharpe), the backtest expectation at promotion beside it, the decay flag, and the forward
equity of the leaders for the chart.

:func:`signals_document`: the date's target positions per strategy and symbol, with the
consensus per symbol across the top-ranked strategies; it is also written as
``reports/YYYY-MM-DD.signals.json``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from blofin_pipeline.numeric import mean_of_finite
from blofin_pipeline.ranking.forward import ForwardSummary, forward_summaries
from blofin_pipeline.store.forward import kept_on
from blofin_pipeline.store.signals import signals_on

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

FORWARD_CURVES = 5        # leaders whose forward equity is charted
CONSENSUS_TOP = 5         # best-ranked strategies whose positions make a symbol's consensus
CONSENSUS_BAND = 0.25     # mean position beyond +/- this is a long / short consensus, else flat
SYNTHETIC_SIGNALS = ("SYNTHETIC DATA: these positions were decided on the generated sample market, "
                     "not on BloFin candles. They test the pipeline; do not trade them.")
FORWARD_TABLE_KEYS = ("rank", "strategy", "decision", "promoted_on", "days", "forward_return", "sharpe",
                      "max_drawdown", "psr", "expected_sharpe", "decay_p", "decayed")


def _row(item: str, summary: ForwardSummary | None, rank: int | None, promoted_on: str | None = None
         ) -> dict[str, Any]:
    base = summary.to_dict() if summary else {"strategy": item, "days": 0, "decayed": False,
                                              "promoted_on": promoted_on}
    reason = summary.contradiction() if summary else None
    return {**{k: base.get(k) for k in FORWARD_TABLE_KEYS}, "rank": rank,
            "decision": "kept" if rank is not None else "archived", "reason": reason,
            "synthetic": bool(base.get("synthetic")), "code_hash": base.get("code_hash")}


def forward_section(store: Store, run_date: str) -> dict[str, Any]:
    """The forward table of ``run_date``: the versions its ranking kept (best first), then those
    tracked that day but not kept (a contradicted forward record among them)."""
    summaries = forward_summaries(store, run_date)
    kept = {f"{k['name']}@{int(k['version'])}": k for k in kept_on(store, run_date)}
    dropped = sorted(item for item in summaries if item not in kept)   # tracked today, not kept
    rows = [_row(item, summaries.get(item), int(k["rank"]), k["promoted_on"]) for item, k in kept.items()]
    rows += [_row(item, summaries[item], None) for item in dropped]
    leaders = [item for item in kept if item in summaries][:FORWARD_CURVES]
    curves = [{"strategy": item, "promoted_on": summaries[item].promoted_on,
               "points": [list(p) for p in summaries[item].equity]} for item in leaders]
    decayed = [r["strategy"] for r in rows if r["decayed"]]
    flags = [f"forward record contradicts the backtest: {', '.join(decayed)}"] if decayed else []
    return {"run_date": run_date, "rows": rows, "curves": curves,
            "tracked_today": len(summaries),
            "decayed": decayed, "flags": flags, "synthetic": any(r["synthetic"] for r in rows)}


def consensus(rows: Sequence[Mapping[str, Any]], top: int = CONSENSUS_TOP) -> dict[str, dict[str, Any]]:
    """Per symbol, across the ``top`` best-ranked strategies with a signal on it: mean position,
    how many are long, short and flat, and the direction the mean gives."""
    by_symbol: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["rank"], r["strategy"], r["version"])):
        if len(by_symbol.setdefault(r["symbol"], [])) < top:
            by_symbol[r["symbol"]].append(r)
    out = {}
    for symbol, mine in sorted(by_symbol.items()):
        positions = [float(r["position"]) for r in mine]
        mean = mean_of_finite(positions) or 0.0
        out[symbol] = {
            "mean_position": mean, "strategies": [f"{r['strategy']}@{r['version']}" for r in mine],
            "long": sum(p > 0 for p in positions), "short": sum(p < 0 for p in positions),
            "flat": sum(p == 0 for p in positions),
            "direction": "long" if mean > CONSENSUS_BAND else "short" if mean < -CONSENSUS_BAND else "flat",
        }
    return out


def signals_document(store: Store, run_date: str) -> dict[str, Any]:
    """The date's signals with their consensus per symbol, labelled synthetic when the data is."""
    rows = signals_on(store, run_date)
    synthetic = any(bool(r["synthetic"]) for r in rows)
    signals = [{"strategy": f"{r['strategy']}@{r['version']}", "rank": int(r["rank"]), "symbol": r["symbol"],
                "timeframe": r["timeframe"], "for_bar": r["for_bar"], "position": float(r["position"]),
                "promoted_on": r["promoted_on"], "code_hash": r["code_hash"]} for r in rows]
    return {"run_date": run_date, "synthetic": synthetic, "data_notice": SYNTHETIC_SIGNALS if synthetic else None,
            "for_bar": max((r["for_bar"] for r in rows), default=None), "signals": signals,
            "consensus": consensus(rows), "consensus_top": CONSENSUS_TOP}


def report_sections(store: Store, run_date: str) -> dict[str, Any]:
    """The report's ``forward`` and ``signals`` parts."""
    return {"forward": forward_section(store, run_date), "signals": signals_document(store, run_date)}
