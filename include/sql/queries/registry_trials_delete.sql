-- Withdraw the trials one item recorded on a run date.
DELETE FROM research_trials WHERE run_date = :run_date AND item = :item
