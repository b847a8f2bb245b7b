"""The report's strategies: one row per version the date scored or ranked, the leaders'
equity on every symbol beside buy and hold, and what changed since the previous ranking.

Definitions:
- a version's day figures are means over the symbols it was scored on (``score``,
  ``sharpe``, ``deflated_sharpe``, ``total_return``), except ``max_drawdown``, the worst
  symbol's; its best symbol is the one with the highest score;
- ``status`` is the version's status at the end of the date (the status history), not
  today's, so an old report keeps telling what that day decided;
- "kept" versions are those the day's ranking kept; before any ranking, the active ones.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from blofin_pipeline.exceptions import PipelineError
from blofin_pipeline.market.candles import load_candles
from blofin_pipeline.numeric import finite_or_none, mean_of_finite
from blofin_pipeline.ranking.ranker import strategy_item
from blofin_pipeline.store.rankings import decisions_for, previous_ranked_date

if TYPE_CHECKING:
    from blofin_pipeline.store import Store
    from blofin_pipeline.strategies.registry import StrategyRecord

EQUITY_LEADERS = 5     # leaders whose equity is charted on every symbol
CHART_POINTS = 200     # points per curve in the report (the stored curves hold more)
PUBLIC_KEYS = ("rank", "item", "name", "version", "category", "origin", "status", "decision", "reason", "score",
               "sharpe", "deflated_sharpe", "max_deflated_sharpe", "total_return", "max_drawdown",
               "worst_drawdown_symbol", "n_trades", "best_symbol", "symbols", "per_symbol")


def loads_or(text: Any, default: Any) -> Any:
    """JSON text decoded, or ``default`` when None or not JSON (a value already decoded passes)."""
    if text is None or not isinstance(text, str):
        return text if text is not None else default
    try:
        return json.loads(text)
    except ValueError:
        return default


def strategy_rows(results: Sequence[Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]],
                  statuses: Mapping[str, StrategyRecord]) -> list[dict[str, Any]]:
    """One row per version scored or ranked on the day, in ranking order."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        grouped.setdefault(strategy_item(r["strategy"], r["version"]), []).append(r)
    ranked = {d["item"]: d for d in decisions}
    rows = [_row(item, grouped.get(item, []), ranked.get(item), statuses.get(item), bool(ranked))
            for item in dict.fromkeys([*grouped, *ranked])]
    if decisions:
        rows.sort(key=lambda s: (s["rank"] is None, s["rank"] or 0, s["item"]))
    else:  # no ranking yet: the order the ranker would use by default
        rows.sort(key=lambda s: (s["score"] is None, -(s["score"] or 0.0), s["item"]))
        for position, s in enumerate(rows, start=1):
            s["rank"] = position
    return rows


def _row(item: str, rs: Sequence[Mapping[str, Any]], decision: Mapping[str, Any] | None,
         record: StrategyRecord | None, any_ranking: bool) -> dict[str, Any]:
    by_score = sorted(rs, key=lambda r: (finite_or_none(r["score"]) is None, -(finite_or_none(r["score"]) or 0.0)))
    drawdowns = sorted((d, r["symbol"]) for r in rs if (d := finite_or_none(r["max_drawdown"])) is not None)
    worst = drawdowns[0] if drawdowns else (None, None)
    name, version = item.rsplit("@", 1)
    status = record.status if record else None
    return {
        "item": item, "name": name, "version": int(version),
        "category": (record.category if record else None) or (rs[0].get("category") if rs else None) or "unknown",
        "origin": record.origin if record else (rs[0].get("origin") if rs else None), "status": status,
        "phase": rs[0]["phase"] if rs else None, "symbols": [r["symbol"] for r in rs],
        "best_symbol": by_score[0]["symbol"] if rs else None,
        **{k: mean_of_finite(r[k] for r in rs) for k in ("score", "sharpe", "deflated_sharpe", "total_return")},
        "max_deflated_sharpe": max((v for r in rs if (v := finite_or_none(r["deflated_sharpe"])) is not None),
                                   default=None),
        "max_drawdown": worst[0], "worst_drawdown_symbol": worst[1],
        "n_trades": sum(int(r["n_trades"]) for r in rs if r["n_trades"] is not None),
        "per_symbol": {r["symbol"]: {k: finite_or_none(r[k]) for k in ("score", "sharpe", "deflated_sharpe",
                                                                       "max_drawdown")} for r in rs},
        "rank": int(decision["rank"]) if decision else None,
        "decision": decision["decision"] if decision else None,
        "reason": decision["reason"] if decision else None,
        # with a ranking that day, kept means kept by it; before any ranking, active
        "kept": (decision["decision"] == "kept") if decision else (not any_ranking and status == "active"),
    }


def public_strategy(s: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: s[k] for k in PUBLIC_KEYS}
    out["strategy"] = out.pop("item")
    return out


def _points(text: Any) -> list[list[Any]]:
    points = loads_or(text, default=None)
    if not isinstance(points, list):
        return []
    clean = [[str(p[0]), finite_or_none(p[1])] for p in points if isinstance(p, (list, tuple)) and len(p) == 2]
    step = max(1, math.ceil(len(clean) / CHART_POINTS))
    return clean[::step] + ([clean[-1]] if clean and (len(clean) - 1) % step else [])


def equity_by_symbol(store: Store, results: Sequence[Mapping[str, Any]], leaders: Sequence[Mapping[str, Any]],
                     timeframe: str) -> list[dict[str, Any]]:
    """Per symbol: the out-of-sample equity of each leader scored on it and buy and hold of
    the symbol over the same span, each normalised to start at 1 (not the leaders' best
    symbol only: that would pick the luckiest curve of each)."""
    by_key = {(strategy_item(r["strategy"], r["version"]), r["symbol"]): r for r in results}
    out = []
    for symbol in sorted({r["symbol"] for r in results}):
        curves = [{"strategy": s["item"], "points": _normalised(_points(by_key[(s["item"], symbol)]["equity_curve"]))}
                  for s in leaders if (s["item"], symbol) in by_key]
        curves = [c for c in curves if c["points"]]
        if curves:
            out.append({"symbol": symbol, "curves": curves,
                        "benchmark": buy_and_hold(store, symbol, timeframe, [p[0] for p in curves[0]["points"]])})
    return out


def _normalised(points: list[list[Any]]) -> list[list[Any]]:
    first = next((v for _, v in points if v), None)
    return [[t, v / first if first and v is not None else None] for t, v in points]


def buy_and_hold(store: Store, symbol: str, timeframe: str, times: Sequence[str]) -> list[list[Any]]:
    """Close over the first close at each of ``times`` (before costs); empty without candles."""
    if not times:
        return []
    stamps = pd.to_datetime(list(times), utc=True)
    try:
        candles = load_candles(store, symbol, timeframe, stamps[0], stamps[-1] + pd.Timedelta(days=1))
    except PipelineError:
        return []
    if candles.empty:
        return []
    close = candles["close"].reindex(stamps, method="ffill")
    if not math.isfinite(float(close.iloc[0] or math.nan)):
        return []
    return [[t, finite_or_none(c / close.iloc[0])] for t, c in zip(times, close)]


def changes_since_previous(store: Store, run_date: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """What the day's ranking changed against the previous ranked date: versions new to the
    ranking, archived today, and kept ones that moved (by rank)."""
    previous = previous_ranked_date(store, run_date)
    if previous is None:
        return None
    before = {d["item"]: d for d in decisions_for(store, previous, "strategy")}
    today = {s["item"]: s for s in rows if s["decision"] is not None}
    moved = [{"strategy": item, "from": int(before[item]["rank"]), "to": s["rank"]}
             for item, s in today.items()
             if item in before and before[item]["decision"] == "kept" and s["decision"] == "kept"
             and int(before[item]["rank"]) != s["rank"]]
    moved.sort(key=lambda m: (-abs(m["from"] - m["to"]), m["strategy"]))
    return {
        "previous_date": previous,
        "new": sorted(item for item in today if item not in before),
        "archived": sorted(item for item, s in today.items() if s["decision"] == "archived"),
        "left": sorted(item for item, d in before.items() if d["decision"] == "kept" and item not in today),
        "moved": moved,
    }
