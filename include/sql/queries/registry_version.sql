-- One version of one strategy.
SELECT * FROM strategies WHERE name = :name AND version = :version
