-- The status history entries one step wrote for a run date (the step's re-run deletes them).
SELECT name, version, status, reason FROM strategy_status_history
WHERE from_date = :from_date AND step = :step
ORDER BY name, version
