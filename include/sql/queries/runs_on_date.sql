-- The step log of the run date, with the run that wrote each row.
SELECT step, status, started_at, ended_at, duration_s, error, run_id
FROM pipeline_runs
WHERE run_date = :run_date
ORDER BY started_at, step
