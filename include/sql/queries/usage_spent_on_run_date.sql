-- USD of the run date's LLM attempts: settled ones at their price, open reservations at their
-- worst case (store/usage.py; the budget reads it inside the reservation's transaction).
SELECT COALESCE(SUM(CASE WHEN status = 'reserved' THEN reserved_usd ELSE usd END), 0) AS usd
FROM llm_usage
WHERE run_date = :run_date
