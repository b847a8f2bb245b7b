-- A strategy version's backtest on one run date, per symbol: the expectation at promotion
-- (annualised Sharpe) and the parameters its walk-forward chose (JSON, per fold).
SELECT symbol, sharpe, params
FROM strategy_backtest_results
WHERE run_date = :run_date AND strategy = :strategy AND version = :version
ORDER BY symbol
