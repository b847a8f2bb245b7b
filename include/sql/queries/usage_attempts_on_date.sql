-- Every LLM attempt of the run date, oldest first: the report's per-call table.
SELECT attempt_id, step, attempt, model, mode, status, request_id, input_tokens, output_tokens,
       cache_creation_tokens, cache_read_tokens, http_retries, reserved_usd, usd, latency_ms, error,
       created_at, settled_at
FROM llm_usage
WHERE run_date = :run_date
ORDER BY created_at, attempt_id
