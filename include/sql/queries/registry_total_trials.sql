-- Configurations tried by items first tried before :before, each item counted once at
-- its largest trial count (the deflated Sharpe ratio's number of trials).
SELECT COALESCE(SUM(n), 0) AS total
FROM (SELECT MAX(n_trials) AS n FROM research_trials GROUP BY item HAVING MIN(run_date) < :before) t
