-- The run date's batch attempts of one step still waiting for their answer (batch mode).
SELECT attempt_id, attempt, model, reserved_usd, request_id, created_at
FROM llm_usage
WHERE run_date = :run_date AND step = :step AND mode = 'batch' AND status = 'reserved'
ORDER BY created_at, attempt_id
