-- The score_strategies step rows of a run date (one per chunk when the step is mapped).
SELECT step, status FROM pipeline_runs WHERE run_date = :run_date AND step LIKE 'score_strategies%'
ORDER BY step
