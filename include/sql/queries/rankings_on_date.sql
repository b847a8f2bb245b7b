-- Every ranking decision of the run date.
SELECT item_type, item, metric, value, rank, decision, reason
FROM ranking_history
WHERE run_date = :run_date
ORDER BY item_type, rank, item
