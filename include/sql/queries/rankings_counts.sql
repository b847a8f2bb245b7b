-- Strategy ranking decisions per run date up to :run_date (kept = active after ranking).
SELECT run_date, decision, COUNT(*) AS n
FROM ranking_history
WHERE item_type = 'strategy' AND run_date <= :run_date
GROUP BY run_date, decision
ORDER BY run_date
