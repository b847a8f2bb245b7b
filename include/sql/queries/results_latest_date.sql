-- The latest run date with strategy backtest results.
SELECT MAX(run_date) AS run_date FROM strategy_backtest_results
