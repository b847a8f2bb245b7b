-- Withdraw one knowledge-base entry (e.g. an archival a re-run of the ranking undid).
DELETE FROM knowledge_base WHERE run_date = :run_date AND kind = :kind AND subject = :subject
