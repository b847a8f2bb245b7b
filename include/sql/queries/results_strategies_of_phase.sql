-- The strategy versions with results of one phase on a run date.
SELECT DISTINCT strategy, version FROM strategy_backtest_results
WHERE run_date = :run_date AND phase = :phase
ORDER BY strategy, version
