-- Strategy versions the forward record follows on :run_date: those whose latest ranking
-- decision before that date kept them (archived ones stop accruing), with their promotion
-- date, the first date a ranking kept them.
WITH latest AS (
    SELECT item, MAX(run_date) AS run_date FROM ranking_history
    WHERE item_type = 'strategy' AND run_date < :run_date
    GROUP BY item
), first_kept AS (
    SELECT item, MIN(run_date) AS promoted_on FROM ranking_history
    WHERE item_type = 'strategy' AND decision = 'kept' AND run_date < :run_date
    GROUP BY item
)
SELECT s.name, s.version, f.promoted_on
FROM latest l
JOIN ranking_history h ON h.run_date = l.run_date AND h.item_type = 'strategy' AND h.item = l.item
JOIN first_kept f ON f.item = l.item
JOIN strategies s ON l.item = s.name || '@' || s.version
WHERE h.decision = 'kept'
ORDER BY s.name, s.version
