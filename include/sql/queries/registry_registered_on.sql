-- Strategy versions registered by the run date.
SELECT name, version, category, origin, status, parent, archive_reason
FROM strategies
WHERE created_run_date = :run_date
ORDER BY name, version
