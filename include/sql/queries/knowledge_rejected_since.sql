-- Candidates rejected by the checks in the feedback window before the run date: the designer
-- learns from them (the date's own rejections come after its design, so a re-run sees the same).
SELECT run_date, subject, detail FROM knowledge_base
WHERE kind = 'rejected' AND run_date >= :since AND run_date < :run_date
ORDER BY run_date DESC, subject
