-- Rejected candidates and tunes from :since up to the day before :run_date, newest first: the
-- day's LLM briefing lists the failed ones so they are not proposed again.
SELECT run_date, kind, subject, detail FROM knowledge_base
WHERE kind IN ('rejected', 'tuned') AND run_date >= :since AND run_date < :run_date
ORDER BY run_date DESC, kind, subject
