-- The version of a strategy registered with exactly this code (by its hash), if any.
SELECT * FROM strategies WHERE name = :name AND code_hash = :code_hash ORDER BY version
