-- PostgreSQL: serialise the budget check and the reservation of one run date across workers
-- (held until the transaction ends; SQLite's BEGIN IMMEDIATE takes its write lock instead).
SELECT pg_advisory_xact_lock(hashtext('llm_usage:' || :run_date))
