-- The step log of the run date.
SELECT step, status, started_at, ended_at, duration_s, error
FROM pipeline_runs
WHERE run_date = :run_date
ORDER BY started_at, step
