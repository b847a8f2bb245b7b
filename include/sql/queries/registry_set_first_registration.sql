-- The same code registered again by an earlier run date (a backfill): the version counts as
-- registered by that date, with that date's rationale and, for a tuned version, the last bar
-- that date's tuner saw.
UPDATE strategies SET created_run_date = :run_date, rationale = :rationale, fitted_until = :fitted_until
WHERE name = :name AND version = :version AND created_run_date > :run_date
