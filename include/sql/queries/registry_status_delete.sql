-- Withdraw the status entry one step wrote for one version on one run date.
DELETE FROM strategy_status_history
WHERE name = :name AND version = :version AND from_date = :from_date AND step = :step
