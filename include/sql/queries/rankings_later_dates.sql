-- Items of one kind ranked on a later run date than the given one (backfill guard).
SELECT item, MAX(run_date) AS last_run_date
FROM ranking_history
WHERE item_type = :item_type AND run_date > :run_date
GROUP BY item
