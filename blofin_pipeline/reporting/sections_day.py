"""The sections of the report page about the day around the ranking: portfolio health,
activity, data quality, the run's steps, LLM usage, the AI review and the definitions."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blofin_pipeline.reporting.html import esc, items, num, pct, section, table, text


def health(r: Mapping[str, Any]) -> str:
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
           items(h.get("significant") or [], "none: no result clears the deflated Sharpe threshold"),
           "<h3>Flags</h3>", items(h.get("flags") or [], "no flags")]
    return section("portfolio-health", "Portfolio health", "\n".join(out))


def activity(r: Mapping[str, Any]) -> str:
    a = r.get("activity") or {}
    archived = a.get("archived") or {}
    rejected = [f"{i.get('name')}: {'; '.join(str(x) for x in i.get('reasons') or []) or 'no reason recorded'}"
                for i in (a.get("rejected") or {}).get("items", [])]
    reasons = {s.get("strategy"): s.get("reason") for s in r.get("leaderboard") or []}
    out = [f"<h3>Designed ({esc((a.get('designed') or {}).get('count', 0))})</h3>",
           items((a.get("designed") or {}).get("names", [])),
           f"<h3>Tuned ({esc((a.get('tuned') or {}).get('count', 0))})</h3>",
           items((a.get("tuned") or {}).get("names", [])),
           f"<h3>Rejected by the checks ({len(rejected)})</h3>", items(rejected),
           f'<h3 id="archived-strategies">Strategies archived by the ranking ({len(archived.get("strategies", []))})</h3>',
           items([f"{x}: {reasons.get(x) or ''}" for x in archived.get("strategies", [])]),
           f"<h3>Models and ensembles archived ({len(archived.get('models', [])) + len(archived.get('ensembles', []))})"
           "</h3>",
           items([f"model {x}" for x in archived.get("models", [])]
                 + [f"ensemble {x}" for x in archived.get("ensembles", [])]),
           f"<h3>Archived after a failed scoring ({len(a.get('failed_scoring') or [])})</h3>",
           items(a.get("failed_scoring") or []),
           "<h3>New strategy versions</h3>",
           table(a.get("new_strategies") or [], [("strategy", "strategy", text), ("category", "category", text),
                                                 ("origin", "origin", text), ("parent", "parent", text),
                                                 ("status", "status now", text)], empty="none registered today")]
    return section("activity", "Activity", "\n".join(out))


def data_quality(r: Mapping[str, Any]) -> str:
    d = r.get("data_quality") or {}
    out = [f"<p>{esc(d.get('n_gaps', 0))} gap(s), {esc(d.get('missing_bars', 0))} missing bar(s) found today "
           "(recorded, never filled).</p>",
           table(d.get("gaps") or [], [("symbol", "symbol", text), ("timeframe", "tf", text),
                                       ("gap_start", "from", text), ("gap_end", "to", text),
                                       ("missing_bars", "missing bars", text)], empty="no gaps"),
           "<h3>Candles in the run's scoring window</h3>",
           table(d.get("candles") or [], [("symbol", "symbol", text), ("timeframe", "tf", text),
                                          ("source", "source", text), ("n_bars", "bars", text),
                                          ("first", "first", text), ("last", "last", text)], empty="no candles")]
    return section("data-quality", "Data quality", "\n".join(out))


def steps(r: Mapping[str, Any]) -> str:
    rows = [{**s, "error": (s.get("error") or "").strip().splitlines()[0] if s.get("error") else None}
            for s in r.get("steps") or []]
    body = ("<p class=\"note\">The steps of the run that made this report (generate_report and ai_review write "
            "this page).</p>"
            + table(rows, [("step", "step", text), ("status", "status", text), ("started_at", "started", text),
                           ("duration_s", "seconds", num(".1f")), ("error", "error", text)],
                    empty="no step log for this run", row_class=lambda row: "bad" if row.get("status") == "failed"
                    else ""))
    return section("steps", "Steps", body)


def llm(r: Mapping[str, Any]) -> str:
    u = r.get("llm_usage") or {}
    body = (f'<p id="llm-total">{esc(u.get("calls", 0))} call(s), {esc(u.get("input_tokens", 0))} input and '
            f"{esc(u.get('output_tokens', 0))} output tokens, cache {esc(u.get('cache_read_tokens', 0))} read and "
            f"{esc(u.get('cache_creation_tokens', 0))} written, ${esc(num('.4f')(u.get('usd', 0.0)))} "
            "(every step of the date, the review included).</p>"
            + table(u.get("attempts") or [], [
                ("step", "step", text), ("attempt", "try", text), ("model", "model", text), ("mode", "mode", text),
                ("status", "status", text), ("input_tokens", "input", text), ("output_tokens", "output", text),
                ("cache_creation_tokens", "cache write", text), ("cache_read_tokens", "cache read", text),
                ("http_retries", "SDK retries", text), ("usd", "USD", num(".4f")),
                ("latency_ms", "ms", num(".0f"))], empty="no LLM calls (offline run)",
                row_class=lambda row: "bad" if row.get("status") in ("error", "invalid") else ""))
    return section("llm-usage", "LLM usage", body)


def review(r: Mapping[str, Any]) -> str:
    rv = r.get("ai_review")
    if not isinstance(rv, Mapping):
        return section("ai-review", "AI review",
                       '<p class="empty">not available yet: the ai_review step adds it to this page.</p>')
    head = f"<p>Mode: <b>{esc(rv.get('mode'))}</b>" + (f", model {esc(rv.get('model'))}" if rv.get("model") else "")
    if rv.get("fallback_reason"):
        head += f". The LLM review could not be had: {esc(rv.get('fallback_reason'))}"
    out = [head + "</p>", f"<p>{esc(rv.get('summary'))}</p>"]
    if rv.get("note"):
        out.append(f'<p class="note">{esc(rv["note"])}</p>')
    for key, title in (("working", "What is working"), ("not_working", "What is not working"),
                       ("risks", "Risks"), ("recommendations", "Recommendations")):
        values = rv.get(key)
        if isinstance(values, (list, tuple)):
            out.append(f'<h3 id="review-{key}">{esc(title)}</h3>' + items(values))
    return section("ai-review", "AI review", "\n".join(out))


def definitions(r: Mapping[str, Any]) -> str:
    d = r.get("definitions") or {}
    titles = (("score", "Score"), ("deflated_sharpe", "Deflated Sharpe ratio (DSR)"),
              ("leaderboard", "Leaderboard figures"), ("no_skill", "No-skill baselines of the ML models"))
    body = "".join(f"<h3>{esc(title)}</h3><pre>{esc(d.get(key))}</pre>" for key, title in titles if d.get(key))
    return section("definitions", "Definitions", body or '<p class="empty">not recorded</p>')
