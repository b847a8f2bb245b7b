-- Version 2: the forward record and the day's signals (docs/RESEARCH-PROTOCOL.md, "Forward record").
-- Both are written per run date as a whole: a re-run or a backfill of a date deletes that
-- date's rows and writes them again, so it never leaves a stale row nor touches another date.

-- Per run date, strategy version and symbol: the bars that arrived since the previous run,
-- the position the strategy decided at each bar's close (from data up to that close only)
-- and the return after the run's fee and slippage.
CREATE TABLE IF NOT EXISTS forward_returns (
    run_date        TEXT NOT NULL,
    strategy        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    timeframe       TEXT NOT NULL,
    promoted_on     TEXT NOT NULL,           -- run date of its first 'kept' ranking decision
    code_hash       TEXT NOT NULL,           -- the code that decided the positions
    params          TEXT NOT NULL,           -- JSON: the parameters it ran with
    first_bar       TEXT NOT NULL,           -- open time of the first bar recorded (ISO-8601 UTC)
    last_bar        TEXT NOT NULL,
    n_bars          INTEGER NOT NULL,
    day_return      DOUBLE PRECISION,        -- the bars' returns compounded
    expected_sharpe DOUBLE PRECISION,        -- annualised backtest Sharpe on this symbol at promotion
    bars            TEXT NOT NULL,           -- JSON [[open_ms, close, position, return], ...]
    synthetic       INTEGER NOT NULL DEFAULT 0,  -- 1 when the candles are the generated sample market
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_date, strategy, version, symbol)
);

-- Per run date: the target position of every strategy kept by that date's ranking on every
-- symbol, decided at the close of the last bar and held over the next one (for_bar).
CREATE TABLE IF NOT EXISTS signals (
    run_date        TEXT NOT NULL,
    strategy        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    timeframe       TEXT NOT NULL,
    rank            INTEGER NOT NULL,        -- the strategy's rank that day
    for_bar         TEXT NOT NULL,           -- open time of the bar the position is for (ISO-8601 UTC)
    position        DOUBLE PRECISION NOT NULL,   -- target position in [-1, 1]
    promoted_on     TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    synthetic       INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_date, strategy, version, symbol)
);

CREATE INDEX IF NOT EXISTS ix_forward_strategy ON forward_returns (strategy, version, run_date);
