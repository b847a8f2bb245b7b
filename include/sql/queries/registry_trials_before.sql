-- Out-of-sample series per item on dates before :run_date (the trial count N): each item
-- at the most symbols it was evaluated on.
SELECT item, MAX(n_series) AS n_series FROM research_trials WHERE run_date < :run_date GROUP BY item ORDER BY item
