-- Items (strategy@version) first tried before a run date.
SELECT item FROM research_trials GROUP BY item HAVING MIN(run_date) < :run_date
