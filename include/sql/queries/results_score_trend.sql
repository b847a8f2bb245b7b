-- Mean score over symbols per strategy version and run date, for the last :n_dates run
-- dates up to and including :run_date.
SELECT run_date, strategy, version, AVG(score) AS score
FROM strategy_backtest_results
WHERE run_date IN (
    SELECT d.run_date FROM (
        SELECT DISTINCT run_date FROM strategy_backtest_results WHERE run_date <= :run_date
    ) d ORDER BY d.run_date DESC LIMIT :n_dates
)
GROUP BY run_date, strategy, version
ORDER BY run_date, strategy, version
