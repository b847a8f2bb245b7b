-- An attempt's outcome: status, the server's id, tokens and the USD they cost.
UPDATE llm_usage
SET status = :status, request_id = :request_id, input_tokens = :input_tokens, output_tokens = :output_tokens,
    cache_creation_tokens = :cache_creation_tokens, cache_read_tokens = :cache_read_tokens,
    http_retries = :http_retries, usd = :usd, latency_ms = :latency_ms, error = :error, settled_at = :settled_at
WHERE attempt_id = :attempt_id
