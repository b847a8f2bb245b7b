-- The latest run date on which strategies were ranked.
SELECT MAX(run_date) AS run_date FROM ranking_history WHERE item_type = 'strategy'
