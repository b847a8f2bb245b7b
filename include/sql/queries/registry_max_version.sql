-- The highest version registered under a name (0 when none).
SELECT COALESCE(MAX(version), 0) AS version FROM strategies WHERE name = :name
