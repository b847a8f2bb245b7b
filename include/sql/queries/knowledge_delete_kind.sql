-- Withdraw every knowledge-base entry of one kind on a run date (the step that writes the
-- kind re-runs and writes them again).
DELETE FROM knowledge_base WHERE run_date = :run_date AND kind = :kind
