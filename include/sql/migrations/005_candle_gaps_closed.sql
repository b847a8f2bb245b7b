-- Gaps are closed, not forgotten, when their bars arrive (a later import or ingest):
-- `closed_at` says when; an open gap (closed_at NULL) is fetched again by the next
-- ingest from the exchange, at most a few times (`fetch_attempts`), since some holes
-- are the exchange's own and never fill.
ALTER TABLE candle_gaps ADD COLUMN closed_at TEXT;
ALTER TABLE candle_gaps ADD COLUMN fetch_attempts INTEGER NOT NULL DEFAULT 0;
