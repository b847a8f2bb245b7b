-- LLM attempts of the run date, by step, model, mode and status (open reservations count at 0 USD).
SELECT step, model, mode, status, COUNT(*) AS calls, SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens, SUM(cache_creation_tokens) AS cache_creation_tokens,
       SUM(cache_read_tokens) AS cache_read_tokens, SUM(http_retries) AS http_retries, SUM(usd) AS usd,
       AVG(latency_ms) AS mean_latency_ms
FROM llm_usage
WHERE run_date = :run_date
GROUP BY step, model, mode, status
ORDER BY step, model, mode, status
