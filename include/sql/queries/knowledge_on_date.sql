-- The knowledge base / change log entries of the run date.
SELECT kind, subject, detail
FROM knowledge_base
WHERE run_date = :run_date
ORDER BY kind, subject
