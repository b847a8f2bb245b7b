-- Before a date's signals are written again: its old rows go, no other date's.
DELETE FROM signals WHERE run_date = :run_date
