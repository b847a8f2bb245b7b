-- Version 1 of the data database: every table of the specification plus the store's own.
-- Portable SQL: runs unchanged on SQLite (the embedded default) and PostgreSQL.
-- Times are ISO-8601 UTC text, candle times epoch milliseconds, JSON as text.
-- Every table written per run is keyed by run_date (the run's logical date) so writes
-- are upserts: a retry or a backfill never duplicates rows.

CREATE TABLE IF NOT EXISTS candles (
    symbol        TEXT NOT NULL,
    timeframe     TEXT NOT NULL,
    ts            BIGINT NOT NULL,           -- bar open time, epoch ms UTC
    open          DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    close         DOUBLE PRECISION NOT NULL,
    volume        DOUBLE PRECISION NOT NULL, -- base currency
    volume_quote  DOUBLE PRECISION,
    source        TEXT NOT NULL,             -- 'blofin' | 'sample' (synthetic) | 'csv'
    ingested_at   TEXT NOT NULL,
    PRIMARY KEY (symbol, timeframe, ts)
);

-- Gaps found while validating candles: recorded and reported, never filled.
CREATE TABLE IF NOT EXISTS candle_gaps (
    symbol        TEXT NOT NULL,
    timeframe     TEXT NOT NULL,
    gap_start     BIGINT NOT NULL,           -- first missing bar, epoch ms
    gap_end       BIGINT NOT NULL,           -- last missing bar, epoch ms
    missing_bars  INTEGER NOT NULL,
    run_date      TEXT NOT NULL,             -- run that found it
    PRIMARY KEY (symbol, timeframe, gap_start)
);

-- The strategy registry: every version stays reproducible (code and its hash).
CREATE TABLE IF NOT EXISTS strategies (
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    category        TEXT NOT NULL,
    params          TEXT NOT NULL,           -- JSON
    param_space     TEXT NOT NULL,           -- JSON
    code            TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    status          TEXT NOT NULL,           -- candidate | active | archived
    origin          TEXT NOT NULL,           -- builtin | designer | tuner | user | ml
    parent          TEXT,                    -- name@version it derives from
    rationale       TEXT,
    created_at      TEXT NOT NULL,
    created_run_date TEXT,
    archived_at     TEXT,
    archive_reason  TEXT,
    PRIMARY KEY (name, version)
);

CREATE TABLE IF NOT EXISTS strategy_backtest_results (
    run_date        TEXT NOT NULL,
    strategy        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    timeframe       TEXT NOT NULL,
    phase           TEXT NOT NULL,           -- score | candidate
    window_start    TEXT NOT NULL,
    window_end      TEXT NOT NULL,
    score           DOUBLE PRECISION,
    sharpe          DOUBLE PRECISION,
    deflated_sharpe DOUBLE PRECISION,
    sortino         DOUBLE PRECISION,
    total_return    DOUBLE PRECISION,
    cagr            DOUBLE PRECISION,
    max_drawdown    DOUBLE PRECISION,
    calmar          DOUBLE PRECISION,
    win_rate        DOUBLE PRECISION,
    profit_factor   DOUBLE PRECISION,
    n_trades        INTEGER,
    exposure        DOUBLE PRECISION,
    turnover        DOUBLE PRECISION,
    params          TEXT,                    -- JSON: parameters chosen per fold
    metrics         TEXT,                    -- JSON: everything else
    equity_curve    TEXT,                    -- JSON [[iso, equity], ...] downsampled
    PRIMARY KEY (run_date, strategy, version, symbol)
);

CREATE TABLE IF NOT EXISTS ml_model_results (
    run_date        TEXT NOT NULL,
    model_name      TEXT NOT NULL,
    model_type      TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    version         TEXT NOT NULL,
    features        TEXT NOT NULL,           -- JSON list
    params          TEXT NOT NULL,           -- JSON
    train_start     TEXT, train_end TEXT, test_start TEXT, test_end TEXT,
    data_hash       TEXT NOT NULL,
    n_train         INTEGER, n_test INTEGER,
    f1 DOUBLE PRECISION, accuracy DOUBLE PRECISION, precision DOUBLE PRECISION,
    recall DOUBLE PRECISION, roc_auc DOUBLE PRECISION, log_loss DOUBLE PRECISION,
    backtest_sharpe DOUBLE PRECISION, backtest_return DOUBLE PRECISION,
    artefact_path   TEXT,
    status          TEXT NOT NULL DEFAULT 'active',  -- active | archived
    archive_reason  TEXT,
    PRIMARY KEY (run_date, model_name)
);

CREATE TABLE IF NOT EXISTS ml_ensembles (
    run_date        TEXT NOT NULL,
    ensemble_name   TEXT NOT NULL,
    method          TEXT NOT NULL,           -- soft_voting | stacking
    symbol          TEXT NOT NULL,
    version         TEXT NOT NULL,
    members         TEXT NOT NULL,           -- JSON list of model names
    f1 DOUBLE PRECISION, accuracy DOUBLE PRECISION, precision DOUBLE PRECISION,
    recall DOUBLE PRECISION, roc_auc DOUBLE PRECISION, log_loss DOUBLE PRECISION,
    backtest_sharpe DOUBLE PRECISION, backtest_return DOUBLE PRECISION,
    artefact_path   TEXT,
    status          TEXT NOT NULL DEFAULT 'active',
    archive_reason  TEXT,
    PRIMARY KEY (run_date, ensemble_name)
);

CREATE TABLE IF NOT EXISTS daily_reports (
    run_date        TEXT PRIMARY KEY,
    report          TEXT NOT NULL,           -- JSON, as written to reports/YYYY-MM-DD.json
    summary         TEXT,
    ai_review       TEXT,                    -- JSON
    ai_review_mode  TEXT,                    -- llm | rule-based
    json_path       TEXT,
    html_path       TEXT,
    synthetic_data  INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- Audit log of every ranking decision.
CREATE TABLE IF NOT EXISTS ranking_history (
    run_date        TEXT NOT NULL,
    item_type       TEXT NOT NULL,           -- strategy | model | ensemble
    item            TEXT NOT NULL,
    metric          TEXT NOT NULL,
    value           DOUBLE PRECISION,
    rank            INTEGER NOT NULL,
    decision        TEXT NOT NULL,           -- kept | archived
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_date, item_type, item)
);

-- Knowledge base / change log: designs, rejections (fed back into the next design),
-- tunings with before/after metrics, archivals.
CREATE TABLE IF NOT EXISTS knowledge_base (
    run_date        TEXT NOT NULL,
    kind            TEXT NOT NULL,           -- designed | rejected | tuned | archived | note
    subject         TEXT NOT NULL,           -- strategy or model name (with version)
    detail          TEXT NOT NULL,           -- JSON
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_date, kind, subject)
);

-- How many strategy configurations were ever tried: the deflated Sharpe ratio needs it.
CREATE TABLE IF NOT EXISTS research_trials (
    run_date        TEXT NOT NULL,
    item            TEXT NOT NULL,           -- strategy@version or design batch
    n_trials        INTEGER NOT NULL,
    PRIMARY KEY (run_date, item)
);

CREATE TABLE IF NOT EXISTS llm_usage (
    run_date        TEXT NOT NULL,
    step            TEXT NOT NULL,
    call_id         TEXT NOT NULL,           -- request id (or a local uuid when none)
    model           TEXT NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    usd             DOUBLE PRECISION NOT NULL,
    latency_ms      DOUBLE PRECISION,
    status          TEXT NOT NULL,           -- ok | invalid | error
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_date, step, call_id)
);

-- Step log, as the specification's _log_step: one row per step and logical date.
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_date        TEXT NOT NULL,
    step            TEXT NOT NULL,
    status          TEXT NOT NULL,           -- running | success | failed
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    duration_s      DOUBLE PRECISION,
    error           TEXT,
    summary         TEXT,                    -- JSON
    PRIMARY KEY (run_date, step)
);

CREATE INDEX IF NOT EXISTS ix_sbr_strategy ON strategy_backtest_results (strategy, run_date);
CREATE INDEX IF NOT EXISTS ix_strategies_status ON strategies (status);
