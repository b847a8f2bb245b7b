"""The leaderboard the CLI shows: one run date's strategy ranking, with that date and the
data it was computed on, so a reader never mistakes a synthetic day for a market one."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from blofin_pipeline.market.sample import SOURCE_NAME as SAMPLE_SOURCE
from blofin_pipeline.ranking.power import day_power, track_record_days
from blofin_pipeline.ranking.ranker import (
    UNRANKED,
    _history_items,
    rank_items,
    strategy_values,
)
from blofin_pipeline.store.candles import candle_coverage
from blofin_pipeline.store.rankings import latest_ranked_date
from blofin_pipeline.store.reports import report_row
from blofin_pipeline.store.results import latest_results_date
from blofin_pipeline.strategies.status import statuses_on

if TYPE_CHECKING:
    from blofin_pipeline.store import Store

EVERY_CANDLE = (0, 2**62)  # epoch ms bounds that hold every stored candle
LEADERBOARD_KEYS = ("rank", "strategy", "category", "score", "sharpe", "deflated_sharpe", "max_drawdown", "status")


def leaderboard_date(store: Store, run_date: str | None = None) -> tuple[str | None, bool]:
    """The date to show (the given one, else the latest ranked, else the latest scored) and
    whether it was ranked."""
    date = run_date or latest_ranked_date(store)
    if date and _history_items(store, date, "strategy"):
        return date, True
    date = run_date or latest_results_date(store)
    return date, False


def leaderboard(store: Store, run_date: str | None = None) -> list[dict[str, Any]]:
    """The strategy ranking of ``run_date`` (default: the latest ranked date), best first.

    Keys: rank, strategy (``name@version``), category, score, sharpe, deflated_sharpe,
    max_drawdown, status. score, sharpe and deflated_sharpe are means over symbols,
    max_drawdown the worst over symbols; a metric without any value is None; status is the
    version's status at the end of that date. When no ranking was recorded for the date
    yet, the date's (or the latest) results are ordered by mean score.
    """
    date, ranked = leaderboard_date(store, run_date)
    if not date:
        return []
    values = strategy_values(store, date, "score")
    if ranked:
        ranks = {item: int(h["rank"]) for item, h in _history_items(store, date, "strategy").items()}
    else:
        ranks = {d.item: d.rank for d in rank_items({k: v["score"] for k, v in values.items()},
                                                     metric="score", count=len(values))}
    statuses = statuses_on(store, date)
    rows = []
    for item, rank in ranks.items():
        v, record = values.get(item, {}), statuses.get(item)
        rows.append({
            "rank": rank, "strategy": item, "category": v.get("category") or (record.category if record else None),
            "score": v.get("score"), "sharpe": v.get("sharpe"), "deflated_sharpe": v.get("deflated_sharpe"),
            "max_drawdown": v.get("max_drawdown"), "status": record.status if record else v.get("status"),
        })
    rows.sort(key=lambda r: (r["rank"] if r["rank"] != UNRANKED else 10**9, r["strategy"]))
    return rows


def data_of(store: Store, run_date: str | None) -> dict[str, Any]:
    """What the date was computed on: its report's candle sources and synthetic flag, or,
    with no report, the sources of the stored candles (``from``: where that was read)."""
    row = report_row(store, run_date) if run_date else None
    if row is not None:
        try:
            report = json.loads(row["report"])
            return {"sources": list(report.get("data_sources") or []), "synthetic": bool(report.get("synthetic")),
                    "from": "report"}
        except ValueError:
            pass  # an unreadable report: say what the candles are instead
    sources = sorted({c["source"] for c in candle_coverage(store, *EVERY_CANDLE)})
    return {"sources": sources, "synthetic": SAMPLE_SOURCE in sources if sources else None, "from": "candles"}


def leaderboard_view(store: Store, run_date: str | None = None) -> dict[str, Any]:
    """The leaderboard with its date, whether that date was ranked, its data and its power
    (`ranking.power`: N, T, the Sharpe needed for DSR 0.95; each row's track record days)."""
    date, ranked = leaderboard_date(store, run_date)
    power = day_power(store, date) if date else None
    rows = [{**r, **track_record_days(r["sharpe"], power)} for r in (leaderboard(store, date) if date else [])]
    return {"run_date": date, "ranked": ranked, "data": data_of(store, date), "power": power, "rows": rows}
