-- The strategy registry's size by category and status.
SELECT category, status, COUNT(*) AS n
FROM strategies
GROUP BY category, status
ORDER BY category, status
