-- The latest run date with a ranking: the date the forward table speaks for by default.
SELECT MAX(run_date) AS run_date FROM ranking_history WHERE item_type = 'strategy'
