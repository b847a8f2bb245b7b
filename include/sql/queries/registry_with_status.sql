-- Every strategy version with one status, by name then version.
SELECT * FROM strategies WHERE status = :status ORDER BY name, version
