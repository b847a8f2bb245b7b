-- The items that recorded trials on a run date.
SELECT item FROM research_trials WHERE run_date = :run_date ORDER BY item
