-- Strategy versions the ranking of :run_date kept, best first, with their promotion date
-- (the first date a ranking kept them): whose positions are the day's signals.
WITH first_kept AS (
    SELECT item, MIN(run_date) AS promoted_on FROM ranking_history
    WHERE item_type = 'strategy' AND decision = 'kept' AND run_date <= :run_date
    GROUP BY item
)
SELECT s.name, s.version, h.rank, f.promoted_on
FROM ranking_history h
JOIN first_kept f ON f.item = h.item
JOIN strategies s ON h.item = s.name || '@' || s.version
WHERE h.item_type = 'strategy' AND h.decision = 'kept' AND h.run_date = :run_date
ORDER BY h.rank, s.name, s.version
