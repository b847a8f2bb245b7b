-- Strategies archived by the ranking from :since up to the day before :run_date, newest first,
-- with the reason: the day's LLM briefing (the same on every step of the day).
SELECT run_date, item, reason FROM ranking_history
WHERE item_type = 'strategy' AND decision = 'archived' AND run_date >= :since AND run_date < :run_date
ORDER BY run_date DESC, item
