-- LLM calls of the run date, by step, model and status.
SELECT step, model, status, COUNT(*) AS calls, SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens, SUM(cache_creation_tokens) AS cache_creation_tokens,
       SUM(cache_read_tokens) AS cache_read_tokens, SUM(usd) AS usd, AVG(latency_ms) AS mean_latency_ms
FROM llm_usage
WHERE run_date = :run_date
GROUP BY step, model, status
ORDER BY step, model, status
