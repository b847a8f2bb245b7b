-- The same code registered again by an earlier run date (a backfill): the version counts as
-- registered by that date, with that date's rationale.
UPDATE strategies SET created_run_date = :run_date, rationale = :rationale
WHERE name = :name AND version = :version AND created_run_date > :run_date
