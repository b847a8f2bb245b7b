-- Active strategies with the run date's per-symbol results (symbol NULL when not scored).
SELECT s.name, s.version, s.category, s.origin, s.params, s.param_space, s.code,
       r.symbol, r.score, r.sharpe, r.deflated_sharpe, r.total_return, r.max_drawdown,
       r.win_rate, r.n_trades, r.turnover
FROM strategies s
LEFT JOIN strategy_backtest_results r
  ON r.strategy = s.name AND r.version = s.version AND r.run_date = :run_date
WHERE s.status = 'active'
ORDER BY s.name, s.version, r.symbol
