"""Command line: ``python -m blofin_pipeline <command>`` (also ``blofin-pipeline``).

Commands: init-db, import-candles, backtest, check-strategy, add-strategy, leaderboard, forward, signals,
where.
The data database defaults to ``$BLOFIN_WORKSPACE/data/blofin_monitor.db``; ``--db URL``
(sqlite:///path or postgresql://...) overrides it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blofin_pipeline.costs import DEFAULT_FEE, DEFAULT_SLIPPAGE
from blofin_pipeline.exceptions import (
    DataValidationError,
    PipelineError,
    SandboxUnavailable,
)

logger = logging.getLogger("blofin_pipeline")
MAX_GAPS_LISTED = 20


def _db_url(args: argparse.Namespace) -> str:
    from blofin_pipeline.config import default_db_url, default_workspace

    return args.db or default_db_url(default_workspace())


def cmd_init_db(args: argparse.Namespace) -> int:
    from blofin_pipeline.store import open_store

    with open_store(_db_url(args)) as store:
        print(f"data database at schema version {store.schema_version()}: {store.path or store.dialect}")
    return 0


def cmd_import_candles(args: argparse.Namespace) -> int:
    from blofin_pipeline.market.csv_import import import_csv
    from blofin_pipeline.store import open_store

    with open_store(_db_url(args)) as store:
        report = import_csv(store, Path(args.file), args.symbol, args.timeframe, replace=args.replace)
    print(report.summary())
    for gap in report.gaps[:MAX_GAPS_LISTED]:
        print(f"  gap: {gap.missing_bars} missing bars from {_iso(gap.start)} to {_iso(gap.end)} (not filled)")
    if len(report.gaps) > MAX_GAPS_LISTED:
        print(f"  ... and {len(report.gaps) - MAX_GAPS_LISTED} more gaps")
    return 0


def _iso(ms: int) -> str:
    import pandas as pd

    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def data_label(sources: list[str] | tuple[str, ...]) -> str:
    """``data: <what the candles are>`` (SYNTHETIC for the sample market), from their sources."""
    from blofin_pipeline.market.window import DataLabel

    return f"data: {DataLabel(tuple(sources)).description}"


def backtest_file(path: Path, *, symbol: str, timeframe: str, fee: float, slippage: float, db_url: str,
                  days: int, as_json: bool, geometry: dict[str, Any] | None = None) -> tuple[int, str]:
    """Check the file (static, sandbox, lookahead), then score it out of sample on the last
    `days` of stored candles (0: all of them) with the walk-forward ``geometry`` (config
    fields wf_train_days, wf_folds, wf_anchored; the DAG's defaults otherwise). Exit code
    0, or 1 when the checks reject it."""
    from blofin_pipeline.reporting.backtest_file import backtest_code, backtest_text

    code = Path(path).read_text(encoding="utf-8")
    result = backtest_code(code, str(path), symbol=symbol, timeframe=timeframe, fee=fee, slippage=slippage,
                           db_url=db_url, days=days, geometry=geometry or {})
    if not result["accepted"]:
        out = {"accepted": False, "reasons": result["reasons"]} if as_json else result["text"]
        return 1, json.dumps(out, indent=2) if as_json else out
    if as_json:
        return 0, json.dumps(result["result"], indent=2, default=str)
    return 0, backtest_text(result["result"], data_label(result["result"]["data"]["sources"]))


def cmd_backtest(args: argparse.Namespace) -> int:
    code, out = backtest_file(Path(args.file), symbol=args.symbol, timeframe=args.timeframe, fee=args.fee,
                              slippage=args.slippage, db_url=_db_url(args), days=args.days, as_json=args.json,
                              geometry={k: v for k, v in (("wf_train_days", args.train_days), ("wf_folds", args.folds),
                                                          ("wf_anchored", args.anchored)) if v is not None})
    print(out)
    return code


def cmd_check_strategy(args: argparse.Namespace) -> int:
    from blofin_pipeline.strategies.checks import check_strategy_file

    path = Path(args.file)
    if not path.is_file():  # an operator error, not a verdict on a strategy
        raise FileNotFoundError(f"no strategy file {str(path)!r}")
    code, out = check_strategy_file(path, as_json=args.json, skip_static=args.skip_static)
    print(out)
    return code


def cmd_add_strategy(args: argparse.Namespace) -> int:
    """Register a user's strategy file as a candidate (origin 'user'); the next run's
    backtest_candidates gates it (static, sandbox, lookahead) and scores it."""
    from blofin_pipeline.store import open_store
    from blofin_pipeline.strategies import builtin_strategies, registry, static_check
    from blofin_pipeline.strategies.runner import SandboxedStrategy
    from blofin_pipeline.strategies.sanitize import safe_name, safe_reason

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"no strategy file {str(path)!r}")
    code = path.read_text(encoding="utf-8")
    # Its name, category and parameters come from the sandbox: the file never runs here.
    try:
        with SandboxedStrategy(code, origin=str(path)) as fn:
            name, category = fn.name, fn.category
            params, space = dict(fn.params), dict(fn.param_space)
    except PipelineError as err:
        print(f"not registered: {safe_reason(err)}")
        return 1
    if name in builtin_strategies():
        print(f"not registered: {name!r} is the name of a built-in strategy; choose another")
        return 1
    with open_store(_db_url(args)) as store:
        record = registry.register(store, name=name, category=category, params=params,
                                   param_space=space, code=code, origin="user", run_date=None,
                                   status="candidate", rationale=f"added from {safe_name(path.name)}")
    if record.status != "candidate" or record.origin != "user":
        print(f"already registered as {record.ref} ({record.origin}, {record.status})")
        return 0
    print(f"registered {record.ref} ({category}) as a candidate; the next run's "
          f"backtest_candidates checks (static, sandbox, lookahead) and scores it")
    for reason in static_check(code)[:5]:
        print(f"  note: the static check will reject it: {safe_reason(reason)}")
    return 0


def _num(value: object, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from blofin_pipeline.ranking import leaderboard_view
    from blofin_pipeline.store import open_store

    with open_store(_db_url(args)) as store:
        view = leaderboard_view(store, run_date=args.date)
    if args.json:
        print(json.dumps(view, indent=2, default=str))
        return 0
    if not view["rows"]:
        print("no scored strategies yet: run the DAG first")
        return 0
    how = "the ranking of that date" if view["ranked"] else "not ranked yet: ordered by mean score"
    print(f"Leaderboard of {view['run_date']} ({how}); {data_label(view['data']['sources'])}")
    if view["power"]:
        print(f"Power: {view['power']['text']}")
    width = max(36, *(len(r["strategy"]) for r in view["rows"]))
    print(f"{'rank':>4}  {'strategy':<{width}} {'category':<15} {'score':>8} {'sharpe':>7} {'dsr':>5} {'max_dd':>7} "
          f"{'mintrl_d':>8} {'dsr95_d':>8}  status that day")
    for r in view["rows"]:
        print(f"{r['rank']:>4}  {r['strategy']:<{width}} {r['category']:<15} {_num(r['score'], '8.3f'):>8} "
              f"{_num(r['sharpe'], '7.2f'):>7} {_num(r['deflated_sharpe'], '5.2f'):>5} "
              f"{_num(r['max_drawdown'], '7.1%'):>7} {_num(r['min_trl_days'], '8.0f'):>8} "
              f"{_num(r['dsr_trl_days'], '8.0f'):>8}  {r['status']}")
    print("mintrl_d: days at the row's Sharpe for 95% confidence it is above 0 (MinTRL); dsr95_d: days for DSR 0.95 "
          "at this N (n/a: a Sharpe <= 0 never gets there)")
    return 0


def _on_date(args: argparse.Namespace, latest: Callable[[Any], str | None], build: Callable[[Any, str], Any]
             ) -> tuple[str | None, Any]:
    """(date, build(store, date)) for ``--date`` or, without it, the ``latest`` date; (None, None) if none."""
    from blofin_pipeline.store import open_store

    with open_store(_db_url(args)) as store:
        date = args.date or latest(store)
        return date, build(store, date) if date else None


def cmd_forward(args: argparse.Namespace) -> int:
    from blofin_pipeline.reporting.forward import forward_section
    from blofin_pipeline.store.forward import latest_ranked_date

    date, section = _on_date(args, latest_ranked_date, forward_section)
    section = section or {"run_date": None, "rows": [], "synthetic": False}
    if args.json:
        print(json.dumps({k: section.get(k) for k in ("run_date", "synthetic", "rows")}, indent=2, default=str))
        return 0
    if not section["rows"]:
        print("no forward record yet: strategies accrue one from the run after their promotion")
        return 0
    print(f"forward record on {date}{' (SYNTHETIC data)' if section['synthetic'] else ''}: since promotion, "
          "after fees and slippage; means over symbols")
    width = max(len(r["strategy"]) for r in section["rows"])
    print(f"{'rank':>4}  {'strategy':<{width}} {'promoted':<10} {'days':>4} {'return':>8} {'sharpe':>7} "
          f"{'max_dd':>7} {'psr':>5} {'bt_sharpe':>9} {'p_decay':>7}  decision")
    for r in section["rows"]:
        print(f"{_num(r['rank'], '>4')}  {r['strategy']:<{width}} {r['promoted_on'] or 'n/a':<10} {r['days']:>4} "
              f"{_num(r['forward_return'], '8.2%'):>8} {_num(r['sharpe'], '7.2f'):>7} "
              f"{_num(r['max_drawdown'], '7.1%'):>7} {_num(r['psr'], '5.2f'):>5} "
              f"{_num(r['expected_sharpe'], '9.2f'):>9} {_num(r['decay_p'], '7.3f'):>7}  "
              f"{r['decision']}{' DECAY' if r['decayed'] else ''}")
    return 0


def cmd_signals(args: argparse.Namespace) -> int:
    from blofin_pipeline.reporting.forward import signals_document
    from blofin_pipeline.store.signals import latest_signals_date

    date, doc = _on_date(args, latest_signals_date, signals_document)
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    if not doc or not doc["signals"]:
        print(f"no signals{' on ' + date if date else ''}: run the DAG first")
        return 0
    if doc["data_notice"]:
        print(doc["data_notice"])
    print(f"signals of {date} for the bar from {doc['for_bar']}")
    for symbol, c in doc["consensus"].items():
        print(f"  {symbol:<12} consensus {c['direction']:<5} mean {c['mean_position']:+.2f} "
              f"(long {c['long']}, short {c['short']}, flat {c['flat']} of the top {len(c['strategies'])})")
    width = max(len(r["strategy"]) for r in doc["signals"])
    for r in doc["signals"]:
        print(f"{r['rank']:>4}  {r['strategy']:<{width}} {r['symbol']:<12} {r['position']:+.2f}")
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    from blofin_pipeline.config import default_workspace

    reports = default_workspace() / "data" / "reports"
    print(f"data database : {_db_url(args)}")
    for ext in ("json", "html"):
        path = reports / f"{args.date}.{ext}"
        print(f"report ({ext:4}): {path}{'' if path.exists() else '  (missing)'}")
    print("leaderboard  : python -m blofin_pipeline leaderboard")
    return 0


def _backtest_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--symbol", required=True)
    p.add_argument("--timeframe", default="1H")
    p.add_argument("--fee", type=float, default=DEFAULT_FEE)
    p.add_argument("--slippage", type=float, default=DEFAULT_SLIPPAGE)
    p.add_argument("--days", type=int, default=0,
                   help="window length, ending at the last stored candle (default 0: every stored candle)")
    p.add_argument("--train-days", type=int, help="walk-forward initial training days (default: the DAG's)")
    p.add_argument("--folds", type=int, help="walk-forward test folds (default: the DAG's)")
    p.add_argument("--anchored", action="store_const", const=True,
                   help="train each fold on every bar before it (default: the DAG's rolling window)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backtest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blofin-pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="data database URL (default: $BLOFIN_WORKSPACE/data/blofin_monitor.db)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-db", help="create or upgrade the data database schema")
    p.set_defaults(func=cmd_init_db)

    p = sub.add_parser("import-candles", help="load candles from CSV (ts,open,high,low,close,volume)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--timeframe", required=True)
    p.add_argument("--replace", action="store_true",
                   help="overwrite stored candles that differ from the file's, and delete a stored series of "
                        "another source first (without it such a file is refused)")
    p.add_argument("file")
    p.set_defaults(func=cmd_import_candles)

    _backtest_parser(sub.add_parser("backtest", help="walk-forward backtest of a strategy file on stored candles"))

    p = sub.add_parser("check-strategy", help="static check, sandboxed run, lookahead check")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--skip-static", action="store_true",
                   help="run the sandbox and lookahead stages without the static check "
                        "(to test what the kernel sandbox holds by itself)")
    p.set_defaults(func=cmd_check_strategy)

    p = sub.add_parser("add-strategy", help="register your strategy file as a candidate; the "
                                            "next run checks and scores it")
    p.add_argument("file")
    p.set_defaults(func=cmd_add_strategy)

    p = sub.add_parser("leaderboard", help="a date's ranking of strategies (default: the latest), with its data")
    p.add_argument("--date", help="run date YYYY-MM-DD (default: the latest)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaderboard)

    for name, func, about in (("forward", cmd_forward, "the forward record of the kept strategies since promotion"),
                              ("signals", cmd_signals, "target positions of the kept strategies for the next bar")):
        p = sub.add_parser(name, help=about)
        p.add_argument("--date", help="run date YYYY-MM-DD (default: the latest)")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("where", help="where the results of a run are")
    p.add_argument("--date", required=True)
    p.set_defaults(func=cmd_where)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SandboxUnavailable as err:  # the machine cannot confine untrusted code
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
