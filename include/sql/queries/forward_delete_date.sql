-- Before a date's forward record is written again: its old rows go, no other date's.
DELETE FROM forward_returns WHERE run_date = :run_date
