-- Withdraw one strategy version's results of one phase on a run date (a re-run replaces them).
DELETE FROM strategy_backtest_results
WHERE run_date = :run_date AND phase = :phase AND strategy = :strategy AND version = :version
