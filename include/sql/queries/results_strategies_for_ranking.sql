-- One row per strategy version and symbol scored on the run date, with the registry
-- fields the ranker needs. Aggregation over symbols happens in Python (ranking/ranker.py).
SELECT r.strategy, r.version, r.symbol, r.phase, s.category, s.status,
       r.score, r.sharpe, r.deflated_sharpe, r.sortino, r.total_return, r.cagr,
       r.max_drawdown, r.calmar, r.win_rate, r.profit_factor, r.exposure, r.n_trades
FROM strategy_backtest_results r
JOIN strategies s ON s.name = r.strategy AND s.version = r.version
WHERE r.run_date = :run_date
ORDER BY r.strategy, r.version, r.symbol
