-- The items that recorded out-of-sample series on a run date, with how many.
SELECT item, n_series FROM research_trials WHERE run_date = :run_date ORDER BY item
