"""The daily report as one self-contained HTML page: inline CSS and SVG, no JavaScript,
no external assets, so it opens from ``file://`` with no server.

Strategy names, error messages and LLM text are untrusted: every piece of text goes
through :func:`html.escape` (via :func:`esc`) before it reaches the page.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from blofin_pipeline.backtest.forward import DECAY_SIGNIFICANCE
from blofin_pipeline.numeric import is_finite
from blofin_pipeline.reporting.charts import Series, line_chart, parse_time

MISSING = "\u2013"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
header{background:#14213d;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:1.5em}
header p{margin:4px 0 0;opacity:.85}
.banner{padding:14px 24px;font-weight:700;font-size:1.1em;text-align:center}
.banner.synthetic{background:#ffd400;color:#000;border-bottom:4px solid #c00}
.banner.real{background:#e6f4ea;color:#114;font-weight:400;font-size:.95em}
section{background:#fff;border:1px solid #dde;border-radius:6px;margin:18px 0;padding:8px 18px 16px}
h2{font-size:1.2em;border-bottom:1px solid #eee;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:.88em;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
.scroll{overflow-x:auto}
th{background:#f0f2f6}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.archived td{color:#888}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.kpi{background:#f0f2f6;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:1.3em}
.flags li{color:#8a3b00}
.ok{color:#176b2c}.bad{color:#b00020}
.empty{color:#777;font-style:italic}
svg.chart{max-width:100%;height:auto}
svg .tick{font-size:11px;fill:#555}
svg .legend{font-size:12px;fill:#222}
pre{white-space:pre-wrap;font-size:.85em;background:#f8f8f8;padding:6px}
nav a{margin-right:10px;font-size:.9em}
"""
SECTIONS = (
    ("summary", "Summary"), ("leaderboard", "Leaderboard"), ("forward", "Forward record"),
    ("signals", "Today's signals"), ("equity-curves", "Equity curves"),
    ("score-trends", "Score trends"), ("models", "ML models"), ("ensembles", "Ensembles"),
    ("portfolio-health", "Portfolio health"), ("activity", "Activity"), ("data-quality", "Data quality"),
    ("steps", "Steps"), ("llm-usage", "LLM usage"), ("ai-review", "AI review"),
)


def esc(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape("" if value is None else str(value), quote=True)


def num(fmt: str) -> Callable[[Any], str]:
    return lambda v: format(v, fmt) if is_finite(v) else MISSING


def pct(v: Any) -> str:
    return f"{v:.1%}" if is_finite(v) else MISSING


def text(v: Any) -> str:
    if v is None:
        return MISSING
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


Column = tuple[str, str, Callable[[Any], str]]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, empty: str = "nothing to show",
          row_class: Callable[[Mapping[str, Any]], str] | None = None, row_title: str | None = None) -> str:
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(title)}</th>" for _, title, _ in columns)
    body = []
    for r in rows:
        cls = row_class(r) if row_class else ""
        cells = []
        for key, _, fmt in columns:
            value = r.get(key)
            klass = ' class="num"' if is_finite(value) else ""
            cells.append(f"<td{klass}>{esc(fmt(value))}</td>")
        title = f' title="{esc(r.get(row_title))}"' if row_title and r.get(row_title) else ""
        body.append(f'<tr class="{esc(cls)}"{title}>' + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _list(items: Sequence[Any], empty: str = "none") -> str:
    if not items:
        return f'<p class="empty">{esc(empty)}</p>'
    return "<ul>" + "".join(f"<li>{esc(text(i))}</li>" for i in items) + "</ul>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>'


# -- sections --------------------------------------------------------------------------
def _summary(r: Mapping[str, Any]) -> str:
    s = r.get("summary") or {}
    kpis = [("strategies scored", s.get("strategies_scored")), ("kept", s.get("strategies_kept")),
            ("archived", s.get("strategies_archived")), ("best score", num(".3f")(s.get("best_score"))),
            ("significant (DSR)", len(s.get("significant") or [])), ("designed", s.get("designed")),
            ("tuned", s.get("tuned")), ("models", s.get("models")), ("ensembles", s.get("ensembles")),
            ("LLM cost", f"${s.get('llm_usd') or 0:.2f}")]
    out = ['<div class="kpis">' + "".join(f'<div class="kpi">{esc(k)}<b>{esc(text(v))}</b></div>' for k, v in kpis)
           + "</div>", f"<p>{esc(s.get('text'))}</p>"]
    if s.get("best_strategy"):
        out.append(f"<p>Best strategy: <b>{esc(s['best_strategy'])}</b></p>")
    flags = s.get("flags") or []
    out.append("<h3>Flags</h3>" + ('<ul class="flags">' + "".join(f"<li>{esc(f)}</li>" for f in flags) + "</ul>"
                                    if flags else '<p class="ok">no flags raised</p>'))
    return _section("summary", "Summary", "\n".join(out))


def _leaderboard(r: Mapping[str, Any]) -> str:
    cols: list[Column] = [("rank", "#", text), ("strategy", "strategy", text), ("category", "category", text),
                          ("score", "score", num(".3f")), ("sharpe", "Sharpe", num(".2f")),
                          ("deflated_sharpe", "DSR", num(".2f")), ("total_return", "return", pct),
                          ("max_drawdown", "max DD", pct), ("n_trades", "trades", text),
                          ("best_symbol", "best symbol", text), ("decision", "decision", text),
                          ("status", "status", text)]
    body = ("<p>Score, Sharpe, DSR (deflated Sharpe probability) and return are means over symbols; "
            "max DD is the worst symbol's. Each row's ranking reason is in its tooltip and in the JSON report.</p>" +
            table(r.get("leaderboard") or [], cols, empty="no strategy was scored on this date",
                  row_class=lambda row: "archived" if row.get("decision") == "archived" else "",
                  row_title="reason"))
    return _section("leaderboard", "Leaderboard", body)


def _equity(r: Mapping[str, Any]) -> str:
    series = []
    for curve in r.get("equity_curves") or []:
        xs, ys = [], []
        first = next((p[1] for p in curve["points"] if is_finite(p[1]) and p[1] != 0), None)
        for t, eq in curve["points"]:
            x = parse_time(t)
            if x is None:
                continue
            xs.append(x)
            ys.append(eq / first if first and is_finite(eq) else None)
        series.append(Series(f"{curve['strategy']} ({curve['symbol']})", xs, ys))
    chart = line_chart(series, title="Equity of the top strategies on their best symbol (start = 1)",
                       y_format=lambda v: f"{v:.2f}")
    return _section("equity-curves", "Equity curves of the top strategies",
                    "<p>Out-of-sample equity on each strategy's best symbol, normalised to start at 1.</p>" + chart)


def _forward(r: Mapping[str, Any]) -> str:
    f = r.get("forward") or {}
    cols: list[Column] = [("rank", "#", text), ("strategy", "strategy", text), ("decision", "decision", text),
                          ("promoted_on", "promoted", text), ("days", "days", text),
                          ("forward_return", "fwd return", pct), ("sharpe", "fwd Sharpe", num(".2f")),
                          ("max_drawdown", "fwd max DD", pct), ("psr", "fwd PSR", num(".2f")),
                          ("expected_sharpe", "bt Sharpe at promotion", num(".2f")),
                          ("decay_p", "P(no decay)", num(".3f")), ("decayed", "decay", lambda v: "DECAY" if v else "")]
    rows = table(f.get("rows") or [], cols, empty="no strategy is kept or tracked on this date",
                 row_class=lambda row: "bad" if row.get("decayed") else "", row_title="reason")
    series = [Series(c["strategy"], [parse_time(p[0]) for p in c["points"]], [p[1] for p in c["points"]])
              for c in f.get("curves") or []]
    chart = line_chart(series, title="Forward equity since promotion of the leaders (start = 1)",
                       y_format=lambda v: f"{v:.3f}")
    body = ("<p>Each strategy's record on bars that arrived after it was promoted, positions decided from "
            "data up to each bar's close, after fees and slippage; means over symbols (max DD: the worst). "
            "PSR: probability the true forward Sharpe is above 0. P(no decay): probability it reaches the "
            f"backtest's Sharpe at promotion; DECAY below {DECAY_SIGNIFICANCE}, and the strategy is not kept.</p>"
            + rows + chart)
    return _section("forward", "Forward record since promotion", body)


def _signals(r: Mapping[str, Any]) -> str:
    doc = r.get("signals") or {}
    notice = f'<p class="bad"><b>{esc(doc["data_notice"])}</b></p>' if doc.get("data_notice") else ""
    consensus = [{"symbol": s, **c} for s, c in (doc.get("consensus") or {}).items()]
    body = (notice + f"<p>Target positions for the bar from {esc(text(doc.get('for_bar')))}, decided at the last "
            f"close. Consensus: mean over the {esc(doc.get('consensus_top'))} best-ranked strategies.</p>"
            + table(consensus, [("symbol", "symbol", text), ("direction", "consensus", text),
                                ("mean_position", "mean position", num("+.2f")), ("long", "long", text),
                                ("short", "short", text), ("flat", "flat", text)], empty="no signals on this date")
            + table(doc.get("signals") or [], [("rank", "#", text), ("strategy", "strategy", text),
                                               ("symbol", "symbol", text), ("position", "position", num("+.2f"))],
                    empty="no strategy is kept on this date"))
    return _section("signals", "Today's signals", body)


def _trends(r: Mapping[str, Any]) -> str:
    t = r.get("trends") or {}
    dates = t.get("dates") or []
    xs = list(range(len(dates)))
    overall = line_chart([Series("top score", xs, t.get("top_score") or []),
                          Series("mean score", xs, t.get("mean_score") or [])],
                         title="Top and mean strategy score per run date", x_kind="index", x_labels=dates)
    per = line_chart([Series(item, xs, ys) for item, ys in (t.get("top_strategies") or {}).items()],
                     title="Score of today's top strategies per run date", x_kind="index", x_labels=dates)
    rows = [{"date": d, "top": a, "mean": b, "scored": c, "kept": k}
            for d, a, b, c, k in zip(dates, t.get("top_score") or [], t.get("mean_score") or [],
                                     t.get("n_scored") or [], t.get("n_kept") or [])]
    trend_table = table(rows[::-1], [("date", "run date", text), ("top", "top score", num(".3f")),
                                     ("mean", "mean score", num(".3f")), ("scored", "scored", text),
                                     ("kept", "kept", text)], empty="no history yet")
    vs = t.get("vs_previous")
    change = ""
    if vs:
        change = (f"<p>Against {esc(vs['previous_date'])}: top score {esc(num('+.3f')(vs.get('top_score')))}, "
                  f"mean score {esc(num('+.3f')(vs.get('mean_score')))}, kept {esc(num('+g')(vs.get('n_kept')))}.</p>")
    return _section("score-trends", f"Score trends (last {len(dates)} run dates)", change + overall + per + trend_table)


def _ml(r: Mapping[str, Any]) -> str:
    metrics: list[Column] = [("f1", "F1", num(".3f")), ("accuracy", "accuracy", num(".3f")),
                             ("precision", "precision", num(".3f")), ("recall", "recall", num(".3f")),
                             ("roc_auc", "ROC AUC", num(".3f")), ("backtest_sharpe", "bt Sharpe", num(".2f")),
                             ("status", "status", text), ("archive_reason", "reason", text)]
    archived = lambda row: "archived" if row.get("status") == "archived" else ""  # noqa: E731
    models = table(r.get("models") or [], [("rank", "#", text), ("model_name", "model", text),
                                           ("model_type", "type", text), ("symbol", "symbol", text), *metrics],
                   empty="no model was trained on this date", row_class=archived)
    ensembles = table(r.get("ensembles") or [], [("rank", "#", text), ("ensemble_name", "ensemble", text),
                                                 ("method", "method", text), ("members", "members", text), *metrics],
                      empty="no ensemble was built on this date", row_class=archived)
    return _section("models", "ML models", models) + "\n" + _section("ensembles", "Ensembles", ensembles)


def _health(r: Mapping[str, Any]) -> str:
    h = r.get("portfolio_health") or {}
    conc = h.get("concentration") or {}
    cats = [{"category": c, **v, "share": (conc.get("category_shares") or {}).get(c)}
            for c, v in (h.get("by_category") or {}).items()]
    syms = [{"symbol": s, **v} for s, v in (h.get("by_symbol") or {}).items()]
    out = [f"<p>{esc(h.get('kept', 0))} kept strategies. Top category: <b>{esc(text(conc.get('top_category')))}</b> "
           f"({esc(pct(conc.get('top_category_share')))}); HHI {esc(num('.2f')(conc.get('hhi')))}, "
           f"effective number of categories {esc(num('.1f')(conc.get('effective_categories')))}.</p>",
           "<h3>Coverage by category</h3>",
           table(cats, [("category", "category", text), ("kept", "kept", text), ("share", "share", pct),
                        ("registered", "registered", text), ("active_in_registry", "active", text),
                        ("best", "best", text), ("best_score", "best score", num(".3f"))]),
           "<h3>Coverage by symbol</h3>",
           table(syms, [("symbol", "symbol", text), ("kept_scored", "kept scored", text),
                        ("positive", "positive score", text), ("mean_score", "mean score", num(".3f")),
                        ("best", "best", text), ("best_score", "best score", num(".3f"))]),
           "<h3>Drawdowns of the kept strategies (worst symbol)</h3>",
           table(h.get("drawdowns") or [], [("strategy", "strategy", text), ("symbol", "symbol", text),
                                            ("max_drawdown", "max drawdown", pct)]),
           "<h3>Significant by the deflated Sharpe ratio</h3>",
           _list(h.get("significant") or [], "none: no result clears the deflated Sharpe threshold"),
           "<h3>Flags</h3>", _list(h.get("flags") or [], "no flags")]
    return _section("portfolio-health", "Portfolio health", "\n".join(out))


def _activity(r: Mapping[str, Any]) -> str:
    a = r.get("activity") or {}
    archived = a.get("archived") or {}
    rejected = [f"{i.get('name')}: {'; '.join(str(x) for x in i.get('reasons') or []) or 'no reason recorded'}"
                for i in (a.get("rejected") or {}).get("items", [])]
    out = [f"<h3>Designed ({esc((a.get('designed') or {}).get('count', 0))})</h3>",
           _list((a.get("designed") or {}).get("names", [])),
           f"<h3>Tuned ({esc((a.get('tuned') or {}).get('count', 0))})</h3>",
           _list((a.get("tuned") or {}).get("names", [])),
           f"<h3>Rejected ({len(rejected)})</h3>", _list(rejected),
           f"<h3>Archived ({esc(archived.get('count', 0))})</h3>",
           _list([f"strategy {x}" for x in archived.get("strategies", [])]
                 + [f"model {x}" for x in archived.get("models", [])]
                 + [f"ensemble {x}" for x in archived.get("ensembles", [])]),
           "<h3>New strategy versions</h3>",
           table(a.get("new_strategies") or [], [("strategy", "strategy", text), ("category", "category", text),
                                                 ("origin", "origin", text), ("parent", "parent", text),
                                                 ("status", "status", text)], empty="none registered today")]
    return _section("activity", "Activity", "\n".join(out))


def _data_quality(r: Mapping[str, Any]) -> str:
    d = r.get("data_quality") or {}
    out = [f"<p>{esc(d.get('n_gaps', 0))} gap(s), {esc(d.get('missing_bars', 0))} missing bar(s) found today "
           "(recorded, never filled).</p>",
           table(d.get("gaps") or [], [("symbol", "symbol", text), ("timeframe", "tf", text),
                                       ("gap_start", "from", text), ("gap_end", "to", text),
                                       ("missing_bars", "missing bars", text)], empty="no gaps"),
           "<h3>Candles held</h3>",
           table(d.get("candles") or [], [("symbol", "symbol", text), ("timeframe", "tf", text),
                                          ("source", "source", text), ("n_bars", "bars", text),
                                          ("first", "first", text), ("last", "last", text)], empty="no candles")]
    return _section("data-quality", "Data quality", "\n".join(out))


def _steps(r: Mapping[str, Any]) -> str:
    rows = [{**s, "error": (s.get("error") or "").strip().splitlines()[0] if s.get("error") else None}
            for s in r.get("steps") or []]
    body = table(rows, [("step", "step", text), ("status", "status", text), ("started_at", "started", text),
                        ("duration_s", "seconds", num(".1f")), ("error", "error", text)],
                 empty="no step log for this date",
                 row_class=lambda row: "bad" if row.get("status") == "failed" else "")
    return _section("steps", "Steps", body)


def _llm(r: Mapping[str, Any]) -> str:
    u = r.get("llm_usage") or {}
    body = (f"<p>{esc(u.get('calls', 0))} call(s), {esc(u.get('input_tokens', 0))} input and "
            f"{esc(u.get('output_tokens', 0))} output tokens, cache {esc(u.get('cache_read_tokens', 0))} read and "
            f"{esc(u.get('cache_creation_tokens', 0))} written, ${esc(num('.4f')(u.get('usd', 0.0)))}.</p>"
            + table(u.get("attempts") or [], [
                ("step", "step", text), ("attempt", "try", text), ("model", "model", text), ("mode", "mode", text),
                ("status", "status", text), ("input_tokens", "input", text), ("output_tokens", "output", text),
                ("cache_creation_tokens", "cache write", text), ("cache_read_tokens", "cache read", text),
                ("http_retries", "SDK retries", text), ("usd", "USD", num(".4f")),
                ("latency_ms", "ms", num(".0f"))], empty="no LLM calls (offline run)",
                row_class=lambda row: "bad" if row.get("status") in ("error", "invalid") else ""))
    return _section("llm-usage", "LLM usage", body)


def _review(r: Mapping[str, Any]) -> str:
    review = r.get("ai_review")
    if not isinstance(review, Mapping):
        return _section("ai-review", "AI review",
                        '<p class="empty">not available yet: the ai_review step adds it to this page.</p>')
    head = f"<p>Mode: <b>{esc(review.get('mode'))}</b>"
    if review.get("model"):
        head += f", model {esc(review.get('model'))}"
    if review.get("fallback_reason"):
        head += f". The LLM review could not be had: {esc(review.get('fallback_reason'))}"
    head += "</p>"
    out = [head, f"<p>{esc(review.get('summary'))}</p>"]
    for key, title in (("working", "What is working"), ("not_working", "What is not working"),
                       ("risks", "Risks"), ("recommendations", "Recommendations")):
        items = review.get(key)
        if isinstance(items, (list, tuple)):
            out.append(f"<h3>{esc(title)}</h3>" + _list(items))
    return _section("ai-review", "AI review", "\n".join(out))


def render_report(report: Mapping[str, Any]) -> str:
    """The whole page."""
    run_date = report.get("run_date")
    synthetic = bool(report.get("synthetic"))
    banner = (f'<div class="banner synthetic" id="data-notice">{esc(report.get("data_notice"))}</div>' if synthetic
              else f'<div class="banner real" id="data-notice">{esc(report.get("data_notice"))}</div>')
    nav = "<nav>" + "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS) + "</nav>"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>BloFin research report {esc(run_date)}{' (SYNTHETIC DATA)' if synthetic else ''}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<header><h1>BloFin research report \u2014 {esc(run_date)}</h1>"
        f"<p>generated {esc(report.get('generated_at'))}</p></header>",
        banner,
        "<main>", nav,
        _summary(report), _leaderboard(report), _forward(report), _signals(report), _equity(report), _trends(report), _ml(report),
        _health(report), _activity(report), _data_quality(report), _steps(report), _llm(report), _review(report),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"
