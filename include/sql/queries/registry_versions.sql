-- Every version of one strategy, newest first.
SELECT * FROM strategies WHERE name = :name ORDER BY version DESC
