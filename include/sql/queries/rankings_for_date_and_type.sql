-- The ranking decisions already taken on a run date for one kind of item.
SELECT item, metric, value, rank, decision, reason
FROM ranking_history
WHERE run_date = :run_date AND item_type = :item_type
ORDER BY rank, item
