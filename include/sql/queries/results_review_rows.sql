-- The run date's results with each strategy's category, for the review.
SELECT r.strategy AS name, r.version, s.category, r.symbol, r.score, r.sharpe, r.deflated_sharpe,
       r.total_return, r.max_drawdown, r.n_trades
FROM strategy_backtest_results r
JOIN strategies s ON s.name = r.strategy AND s.version = r.version
WHERE r.run_date = :run_date
ORDER BY r.score DESC
