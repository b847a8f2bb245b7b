-- Every strategy version without its code: who it is, where it came from, its status.
SELECT name, version, category, status, origin, code_hash, created_run_date
FROM strategies
ORDER BY name, version
