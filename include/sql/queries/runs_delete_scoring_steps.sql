-- Withdraw the score_strategies step rows of a run date (every chunk of an earlier plan).
DELETE FROM pipeline_runs WHERE run_date = :run_date AND step LIKE 'score_strategies%'
