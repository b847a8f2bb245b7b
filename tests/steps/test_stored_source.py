"""data_source="stored": research exactly the candles in the database, labelled by their own source.

The candles are a CSV written here by hand (an AR(1) random walk, not the project's sample
generator) and imported as an operator would; the run fetches nothing, and nothing it
writes (report JSON, HTML, step summaries, logs) may call them synthetic.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from blofin_pipeline import steps
from blofin_pipeline.config import PipelineConfig, RunContext
from blofin_pipeline.market.csv_import import import_csv
from blofin_pipeline.store import open_store

DAY = "2026-04-10"
SYMBOLS = ("AAA-USDT", "BBB-USDT")


def write_ar1_csv(path, seed: int, *, days: int = 100, phi: float = 0.2, vol: float = 0.006,
                  end: str = DAY) -> None:
    """Hourly bars ending at ``end`` of a price whose log returns follow r_t = phi * r_(t-1) + e_t
    (e_t normal with std ``vol``): an independent generator, not the sample market's."""
    rng = np.random.default_rng(seed)
    n = days * 24
    eps = rng.normal(0.0, vol, n)
    returns = np.empty(n)
    prev = 0.0
    for i, e in enumerate(eps):
        prev = phi * prev + e
        returns[i] = prev
    close = 50.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[50.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    start = pd.Timestamp(end, tz="UTC") - pd.Timedelta(days=days)
    ts = (start + pd.to_timedelta(np.arange(n), unit="h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{t},{o:.6f},{h:.6f},{lo:.6f},{c:.6f},{v:.3f}"
             for t, o, h, lo, c, v in zip(ts, open_, high, low, close, rng.uniform(10, 100, n))]
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(lines) + "\n")


def test_a_stored_csv_is_researched_as_is_and_labelled_by_its_source(tmp_path, caplog):
    config = PipelineConfig(symbols=SYMBOLS, data_source="stored", history_days=100, score_window_days=60,
                            wf_train_days=30,
                            n_designs=1, n_tunes=1, tune_trials=4, top_strategies=8, ml_enabled=False)
    ctx = RunContext.create(logical_date=DAY, data_end=DAY, config=config,
                            db_url=f"sqlite:///{tmp_path / 'data' / 'blofin_monitor.db'}", workspace=tmp_path)
    with open_store(ctx.db_url) as store:
        for seed, symbol in enumerate(SYMBOLS):
            path = tmp_path / f"{symbol}.csv"
            write_ar1_csv(path, seed)
            assert import_csv(store, path, symbol, "1H").written == 100 * 24
        before = store.scalar("SELECT COUNT(*) AS n FROM candles")

    with caplog.at_level(logging.INFO, logger="blofin_pipeline"):
        out = steps.run_all(ctx)

    with open_store(ctx.db_url) as store:
        assert store.scalar("SELECT COUNT(*) AS n FROM candles") == before  # nothing fetched or generated
        assert store.query("SELECT DISTINCT source FROM candles") == [{"source": "csv"}]
        report = json.loads(store.scalar("SELECT report FROM daily_reports WHERE run_date = :d", {"d": DAY}))
        flag = store.scalar("SELECT synthetic_data FROM daily_reports WHERE run_date = :d", {"d": DAY})
        summaries = [r["summary"] or "" for r in store.query("SELECT summary FROM pipeline_runs")]
    assert out["ingest_candles"]["sources"] == ["csv"] and out["ingest_candles"]["synthetic"] is False
    assert out["ingest_candles"]["symbols"]["AAA-USDT"]["stored_bars"] == 100 * 24
    assert report["synthetic"] is False and flag == 0 and report["data_sources"] == ["csv"]
    assert report["data_notice"] == "Market data: candles imported from CSV (source 'csv')."
    assert out["score_strategies"][0]["data_sources"] == ["csv"]
    assert out["generate_report"]["data_sources"] == ["csv"] and out["generate_report"]["synthetic"] is False
    html = (tmp_path / "data" / "reports" / f"{DAY}.html").read_text()
    assert "source &#x27;csv&#x27;" in html or "source 'csv'" in html
    assert "stored: 2400 bars to 2026-04-09T23:00:00+00:00 (source csv); nothing fetched" in caplog.text
    assert "[data: csv]" in caplog.text
    # Never labelled synthetic (the labels say SYNTHETIC in capitals, or "sample market"): not in the
    # report, the page, the step summaries or the logs.
    for text in (json.dumps(report), html, *summaries, caplog.text):
        assert "SYNTHETIC" not in text and "sample market" not in text, text[:300]
