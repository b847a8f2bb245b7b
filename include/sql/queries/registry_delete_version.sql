-- Delete one strategy version (a research step's re-run withdrawing what only it used).
DELETE FROM strategies WHERE name = :name AND version = :version
