-- One truth per date. Every status a strategy version ever had, from the run date it took
-- effect: a date's decisions read the registry as it was when the date started, so a
-- backfill in any order, or a re-run of an older date, sees what a run in date order saw.
-- `strategies.status` stays as a cache of each version's latest entry.
--
-- seq orders the entries of one version on one date by the step that wrote them
-- (strategies/registry.py STATUS_STEPS): 0 registration, 1 score_strategies, 2 research
-- (design, tune, ML), 3 backtest_candidates, 4 rank_and_update, 5 by hand. A step re-run
-- for a date deletes its own entries of that date first, so a re-run replaces, never adds.
CREATE TABLE IF NOT EXISTS strategy_status_history (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    from_date   TEXT NOT NULL,           -- run date the status holds from ('0001-01-01': every date, built-ins)
    seq         INTEGER NOT NULL,
    step        TEXT NOT NULL,           -- who decided: builtin | user | a task id | manual | migration
    status      TEXT NOT NULL,           -- candidate | active | archived
    reason      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (name, version, from_date, seq)
);
CREATE INDEX IF NOT EXISTS ix_status_history_date ON strategy_status_history (from_date, step);

-- Which run wrote a step's row (the Airflow dag run id, or a local id): the report shows
-- the steps of its own run only.
ALTER TABLE pipeline_runs ADD COLUMN run_id TEXT;

-- Share of up labels among a model's (ensemble's) out-of-sample rows: the no-skill baselines
-- (majority-class accuracy, F1 of always up) the report shows beside accuracy and F1.
ALTER TABLE ml_model_results ADD COLUMN up_share DOUBLE PRECISION;
ALTER TABLE ml_ensembles ADD COLUMN up_share DOUBLE PRECISION;

-- strategy_backtest_results.phase gains 'ml': the ensemble-as-strategy's row, written by
-- train_ml_models (score | candidate | ml).

-- The history of the versions already stored, as well as it can be told from what was kept.
-- Registration: built-ins on every date, the others from the date that registered them.
INSERT INTO strategy_status_history (name, version, from_date, seq, step, status, reason, created_at)
SELECT name, version,
       CASE WHEN origin = 'builtin' OR created_run_date IS NULL THEN '0001-01-01' ELSE created_run_date END,
       CASE WHEN origin IN ('builtin', 'user') THEN 0 ELSE 2 END,
       'migration',
       CASE WHEN origin IN ('designer', 'tuner', 'user') THEN 'candidate' ELSE 'active' END,
       NULL, created_at
FROM strategies;

-- Checked candidates: accepted when ever ranked, otherwise rejected (or failed), on the date
-- that registered them.
INSERT INTO strategy_status_history (name, version, from_date, seq, step, status, reason, created_at)
SELECT s.name, s.version, COALESCE(s.created_run_date, '0001-01-01'), 3, 'migration',
       CASE WHEN EXISTS (SELECT 1 FROM ranking_history h WHERE h.item_type = 'strategy'
                           AND h.item = s.name || '@' || CAST(s.version AS TEXT)) THEN 'active'
            ELSE s.status END,
       CASE WHEN s.status = 'archived' THEN s.archive_reason ELSE NULL END, s.created_at
FROM strategies s
WHERE s.origin IN ('designer', 'tuner', 'user') AND s.status <> 'candidate';

-- Ranking decisions that changed a status.
INSERT INTO strategy_status_history (name, version, from_date, seq, step, status, reason, created_at)
SELECT s.name, s.version, h.run_date, 4, 'migration', 'archived', h.reason, h.created_at
FROM ranking_history h
JOIN strategies s ON h.item = s.name || '@' || CAST(s.version AS TEXT)
WHERE h.item_type = 'strategy' AND h.decision = 'archived'
ON CONFLICT DO NOTHING;

-- Archived by anything else (a failed scoring, by hand, superseded): from the day it was archived.
INSERT INTO strategy_status_history (name, version, from_date, seq, step, status, reason, created_at)
SELECT s.name, s.version, COALESCE(SUBSTR(s.archived_at, 1, 10), '0001-01-01'), 5, 'migration', 'archived',
       s.archive_reason, s.created_at
FROM strategies s
WHERE s.status = 'archived'
  AND NOT EXISTS (SELECT 1 FROM strategy_status_history h
                  WHERE h.name = s.name AND h.version = s.version AND h.status = 'archived')
ON CONFLICT DO NOTHING;
