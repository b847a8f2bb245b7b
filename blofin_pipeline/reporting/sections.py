"""The sections of the report page, one function each, all reading the report dict only."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from blofin_pipeline.backtest.forward import DECAY_SIGNIFICANCE
from blofin_pipeline.numeric import is_finite
from blofin_pipeline.reporting.charts import Series, line_chart, parse_time
from blofin_pipeline.reporting.html import (
    Column,
    esc,
    items,
    num,
    pct,
    section,
    table,
    text,
)
from blofin_pipeline.reporting.sections_day import (
    activity,
    data_quality,
    definitions,
    health,
    llm,
    review,
    steps,
)

SECTIONS = (
    ("summary", "Summary"), ("run", "Run"), ("leaderboard", "Leaderboard"), ("changes", "Since the previous day"),
    ("forward", "Forward record"), ("signals", "Today's signals"),
    ("equity-curves", "Equity and drawdown"), ("score-trends", "Score trends"), ("models", "ML models"),
    ("ensembles", "Ensembles"), ("portfolio-health", "Portfolio health"), ("activity", "Activity"),
    ("data-quality", "Data quality"), ("steps", "Steps"), ("llm-usage", "LLM usage"), ("ai-review", "AI review"),
    ("definitions", "Definitions"),
)
KPIS = (("strategies_scored", "strategies scored"), ("strategies_kept", "kept"),
        ("strategies_archived", "archived"), ("best_score", "best score"), ("significant", "significant (DSR)"),
        ("designed", "designed"), ("tuned", "tuned"), ("rejected", "rejected"), ("models", "models"),
        ("ensembles", "ensembles"), ("llm_usd", "LLM cost"))


def _kpi_value(key: str, value: Any) -> str:
    if key == "best_score":
        return num(".3f")(value)
    if key == "significant":
        return str(len(value or []))
    if key == "llm_usd":
        return f"${value or 0:.2f}"
    return text(value)


def _summary(r: Mapping[str, Any]) -> str:
    s = r.get("summary") or {}
    kpis = "".join(f'<div class="kpi" data-key="{k}">{esc(label)}<b>{esc(_kpi_value(k, s.get(k)))}</b></div>'
                   for k, label in KPIS)
    out = [f'<div class="kpis">{kpis}</div>', f'<p id="summary-text">{esc(s.get("text"))}</p>']
    if s.get("best_strategy"):
        out.append(f'<p>Best strategy (rank 1 of the leaderboard): <b id="best-strategy">{esc(s["best_strategy"])}'
                   "</b></p>")
    flags = s.get("flags") or []
    out.append("<h3>Flags</h3>" + ('<ul class="flags">' + "".join(f"<li>{esc(f)}</li>" for f in flags) + "</ul>"
                                    if flags else '<p class="ok">no flags raised</p>'))
    return section("summary", "Summary", "\n".join(out))


def _run(r: Mapping[str, Any]) -> str:
    run = r.get("run") or {}
    facts = [("run", run.get("run_id")), ("triggered at", run.get("triggered_at")), ("data up to", run.get("data_end"))]
    params = sorted((r.get("config") or {}).items())
    body = ('<p>This report was made by the run below, with these parameters. A date\'s report is replaced whole '
            "when the date runs again.</p>"
            '<dl class="params">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(text(v))}</dd>" for k, v in facts) + "</dl>"
            '<h3>Parameters</h3><dl class="params" id="run-params">'
            + "".join(f"<dt>{esc(k)}</dt><dd>{esc(text(v))}</dd>" for k, v in params) + "</dl>")
    return section("run", "Run", body)


def _leaderboard(r: Mapping[str, Any]) -> str:
    cols: list[Column] = [("rank", "#", text), ("strategy", "strategy", text), ("category", "category", text),
                          ("score", "score", num(".3f")), ("sharpe", "Sharpe", num(".2f")),
                          ("deflated_sharpe", "DSR", num(".2f")), ("total_return", "return", pct),
                          ("max_drawdown", "max DD", pct), ("n_trades", "trades", text),
                          ("min_trl_days", "MinTRL days", num(".0f")), ("dsr_trl_days", "days to DSR 0.95", num(".0f")),
                          ("symbols", "symbols", text), ("decision", "decision", text),
                          ("status", "status that day", text)]
    power = r.get("power")
    body = ("<p>Score, Sharpe, DSR (deflated Sharpe probability) and return are means over the symbols; max DD is "
            "the worst symbol's (see Definitions). Each row's ranking reason is in its tooltip and in the JSON.</p>" +
            (f'<p id="power"><b>Power.</b> {esc(power["text"])}. MinTRL days: the days of returns at the row\'s own '
             "Sharpe needed for 95% confidence that it is above 0; days to DSR 0.95: the days needed at that "
             "Sharpe for DSR 0.95 at this N (empty: a Sharpe at or below 0 never gets there).</p>" if power else "") +
            table(r.get("leaderboard") or [], cols, empty="no strategy was scored on this date",
                  row_class=lambda row: "archived" if row.get("decision") == "archived" else "",
                  row_title="reason"))
    return section("leaderboard", "Leaderboard", body)


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
                       y_format=lambda v: f"{v:.3f}", y_label="equity (start = 1)", x_label="time (UTC)")
    body = ("<p>Each strategy's record on bars that arrived after it was promoted, positions decided from "
            "data up to each bar's close, after fees and slippage; means over symbols (max DD: the worst). "
            "PSR: probability the true forward Sharpe is above 0. P(no decay): probability it reaches the "
            f"backtest's Sharpe at promotion; DECAY below {DECAY_SIGNIFICANCE}, and the strategy is not kept.</p>"
            + rows + chart)
    return section("forward", "Forward record since promotion", body)


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
    return section("signals", "Today's signals", body)


def _changes(r: Mapping[str, Any]) -> str:
    c = r.get("changes")
    if not c:
        return section("changes", "Since the previous day", '<p class="empty">no earlier ranking to compare with</p>')
    moved = [f"{m['strategy']}: #{m['from']} \u2192 #{m['to']}" for m in c.get("moved") or []]
    body = (f"<p>Against the ranking of {esc(c['previous_date'])}.</p>"
            f"<h3>New in the ranking ({len(c.get('new') or [])})</h3>" + items(c.get("new") or [])
            + f"<h3>Archived today ({len(c.get('archived') or [])})</h3>" + items(c.get("archived") or [])
            + f"<h3>Kept then, not ranked today ({len(c.get('left') or [])})</h3>" + items(c.get("left") or [])
            + f"<h3>Moved ({len(moved)})</h3>" + items(moved))
    return section("changes", f"Since the previous day ({c['previous_date']})", body)


def _series(label: str, points: Sequence[Sequence[Any]], *, dashed: bool = False, drawdown: bool = False) -> Series:
    xs, ys, peak = [], [], None
    for t, v in points:
        x = parse_time(t)
        if x is None:
            continue
        xs.append(x)
        if drawdown and is_finite(v):
            peak = v if peak is None else max(peak, v)
            ys.append(v / peak - 1.0 if peak else None)
        else:
            ys.append(v if is_finite(v) else None)
    return Series(label, xs, ys, dashed=dashed)


def _equity(r: Mapping[str, Any]) -> str:
    out = ["<p>Out-of-sample (walk-forward) equity of the day's leaders on every symbol they were scored on, and "
           "buy and hold of the symbol over the same span (dashed, before costs), each starting at 1; under each, "
           "the drawdown from the running peak. Every symbol, not each leader's best one: a best symbol is picked "
           "after the fact.</p>"]
    for block in r.get("equity") or []:
        curves = [(c["strategy"], c["points"]) for c in block.get("curves") or []]
        bench = ("buy and hold " + block["symbol"], block.get("benchmark") or [])
        for drawdown in (False, True):
            series = [_series(name, pts, drawdown=drawdown) for name, pts in curves]
            if bench[1]:
                series.append(_series(*bench, dashed=True, drawdown=drawdown))
            out.append(line_chart(
                series, title=f"{block['symbol']}: {'drawdown' if drawdown else 'equity'} of the leaders",
                y_label="drawdown" if drawdown else "equity (start = 1)", x_label="time (UTC)",
                y_format=(lambda v: f"{v:.0%}") if drawdown else (lambda v: f"{v:.2f}")))
    if len(out) == 1:
        out.append('<p class="empty">no equity curves stored for this date</p>')
    return section("equity-curves", "Equity and drawdown of the leaders", "\n".join(out))


def _trends(r: Mapping[str, Any]) -> str:
    t = r.get("trends") or {}
    dates = t.get("dates") or []
    xs = list(range(len(dates)))
    overall = line_chart([Series("top score", xs, t.get("top_score") or []),
                          Series("mean score", xs, t.get("mean_score") or [])],
                         title="Top and mean strategy score per run date", x_kind="index", x_labels=dates,
                         y_label="score", x_label="run date")
    per = line_chart([Series(item, xs, ys) for item, ys in (t.get("top_strategies") or {}).items()],
                     title="Score of today's leaders per run date", x_kind="index", x_labels=dates,
                     y_label="score", x_label="run date")
    rows = [{"date": d, "top": a, "mean": b, "scored": c, "kept": k}
            for d, a, b, c, k in zip(dates, t.get("top_score") or [], t.get("mean_score") or [],
                                     t.get("n_scored") or [], t.get("n_kept") or [])]
    trend_table = table(rows[::-1], [("date", "run date", text), ("top", "top score", num(".3f")),
                                     ("mean", "mean score", num(".3f")), ("scored", "scored", text),
                                     ("kept", "kept", text)], empty="no history yet")
    return section("score-trends", f"Score trends (last {len(dates)} run dates)", overall + per + trend_table)


def _ml(r: Mapping[str, Any]) -> str:
    def rows(key: str) -> list[dict[str, Any]]:
        return [{**m, "vs_accuracy": _edge(m.get("accuracy"), m.get("majority_accuracy")),
                 "vs_f1": _edge(m.get("f1"), m.get("always_up_f1"))} for m in r.get(key) or []]

    metrics: list[Column] = [("accuracy", "accuracy", num(".3f")), ("majority_accuracy", "no-skill acc.", num(".3f")),
                             ("vs_accuracy", "edge", num("+.3f")), ("f1", "F1", num(".3f")),
                             ("always_up_f1", "always-up F1", num(".3f")), ("vs_f1", "edge", num("+.3f")),
                             ("roc_auc", "ROC AUC", num(".3f")), ("backtest_sharpe", "bt Sharpe", num(".2f")),
                             ("status", "status", text)]
    def row_class(row: Mapping[str, Any]) -> str:
        return "archived" if row.get("status") == "archived" else ""

    note = ("<p class=\"note\">Beside each accuracy the no-skill baseline: always predicting the majority class of "
            "the test rows; beside each F1, always predicting up. An edge at or below 0 (red) is no skill.</p>")
    models = table(rows("models"), [("rank", "#", text), ("model_name", "model", text), ("model_type", "type", text),
                                    ("symbol", "symbol", text), *metrics],
                   empty="no model was trained on this date", row_class=row_class)
    ensembles = table(rows("ensembles"), [("rank", "#", text), ("ensemble_name", "ensemble", text),
                                          ("method", "method", text), ("members", "members", text), *metrics],
                      empty="no ensemble was built on this date", row_class=row_class)
    return section("models", "ML models", note + models) + "\n" + section("ensembles", "Ensembles", note + ensembles)


def _edge(value: Any, baseline: Any) -> float | None:
    return value - baseline if is_finite(value) and is_finite(baseline) else None


def render_sections(report: Mapping[str, Any]) -> str:
    """Every section of the page, in the order of :data:`SECTIONS`."""
    parts = (_summary, _run, _leaderboard, _changes, _forward, _signals, _equity, _trends, _ml, health, activity, data_quality, steps,
             llm, review, definitions)
    return "\n".join(part(report) for part in parts)
