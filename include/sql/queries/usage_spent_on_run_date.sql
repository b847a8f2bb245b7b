-- USD spent on LLM calls for one run date (the daily budget reads it before every call; store/usage.py).
SELECT COALESCE(SUM(usd), 0) AS usd FROM llm_usage WHERE run_date = :run_date
