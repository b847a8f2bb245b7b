SELECT MAX(run_date) AS run_date FROM signals
