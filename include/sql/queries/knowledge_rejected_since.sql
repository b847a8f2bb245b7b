-- Candidates rejected by the checks in the feedback window: the designer learns from them.
SELECT run_date, subject, detail FROM knowledge_base
WHERE kind = 'rejected' AND run_date >= :since AND run_date <= :run_date
ORDER BY run_date DESC, subject
