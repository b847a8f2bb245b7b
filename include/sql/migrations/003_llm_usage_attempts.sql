-- Version 3 (issue 14): the LLM usage ledger keyed by a local id per attempt.
-- The old key (run_date, step, call_id) used the server's request id, and a server, proxy
-- or test double that repeats a request id merged calls into one row (spent money went
-- unrecorded and the budget read too little). Now every attempt gets its own row, made
-- before the request is sent: status 'reserved' holds the worst-case cost of the call
-- (reserved_usd) until the answer settles it to ok, invalid or error with the real tokens
-- and USD. The day's spend is the settled USD plus the open reservations.
CREATE TABLE llm_usage_attempts (
    attempt_id      TEXT NOT NULL,           -- local id, one per attempt (never the server's)
    run_date        TEXT NOT NULL,
    step            TEXT NOT NULL,           -- design | tune | review
    attempt         INTEGER NOT NULL DEFAULT 1,  -- 1, or 2 for the validation retry
    model           TEXT NOT NULL,
    mode            TEXT NOT NULL DEFAULT 'direct',  -- direct | stream | batch
    status          TEXT NOT NULL,           -- reserved | ok | invalid | error
    request_id      TEXT,                    -- the server's request id (or batch id), informative only
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    http_retries    INTEGER NOT NULL DEFAULT 0,  -- the SDK's own retries (429, 529, ...) before this answer
    reserved_usd    DOUBLE PRECISION NOT NULL DEFAULT 0,
    usd             DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms      DOUBLE PRECISION,
    error           TEXT,
    created_at      TEXT NOT NULL,
    settled_at      TEXT,
    CONSTRAINT llm_usage_attempts_pkey PRIMARY KEY (attempt_id)
);

INSERT INTO llm_usage_attempts (attempt_id, run_date, step, attempt, model, mode, status, request_id,
                                input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
                                http_retries, reserved_usd, usd, latency_ms, error, created_at, settled_at)
SELECT 'legacy_' || run_date || '_' || step || '_' || call_id, run_date, step, 1, model, 'direct', status, call_id,
       input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
       0, 0, usd, latency_ms, NULL, created_at, created_at
FROM llm_usage;

DROP TABLE llm_usage;

ALTER TABLE llm_usage_attempts RENAME TO llm_usage;

CREATE INDEX IF NOT EXISTS ix_llm_usage_run_date ON llm_usage (run_date, step);
