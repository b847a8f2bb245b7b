-- Every status entry of one version (the version itself is being deleted).
DELETE FROM strategy_status_history WHERE name = :name AND version = :version
