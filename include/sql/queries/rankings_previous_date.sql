-- The latest run date before :run_date on which strategies were ranked ("since yesterday").
SELECT MAX(run_date) AS run_date FROM ranking_history WHERE item_type = 'strategy' AND run_date < :run_date
