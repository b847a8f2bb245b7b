-- Every strategy result of the run date with its registry fields (report: leaderboard,
-- portfolio health, equity curves).
SELECT r.strategy, r.version, r.symbol, r.timeframe, r.phase, r.window_start, r.window_end,
       r.score, r.sharpe, r.deflated_sharpe, r.sortino, r.total_return, r.cagr, r.max_drawdown,
       r.calmar, r.win_rate, r.profit_factor, r.n_trades, r.exposure, r.turnover, r.equity_curve,
       s.category, s.status, s.origin
FROM strategy_backtest_results r
LEFT JOIN strategies s ON s.name = r.strategy AND s.version = r.version
WHERE r.run_date = :run_date
ORDER BY r.strategy, r.version, r.symbol
