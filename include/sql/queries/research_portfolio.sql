-- Active strategies as the run date started (what the day added is left out, so a retry
-- sees the same portfolio; what that date's ranking archived still counts) with that date's per-symbol scores (symbol NULL when not scored).
SELECT s.name, s.version, s.category, s.origin, s.params, s.param_space, s.code,
       r.symbol, r.score, r.sharpe, r.deflated_sharpe, r.total_return, r.max_drawdown,
       r.win_rate, r.n_trades, r.turnover
FROM strategies s
LEFT JOIN strategy_backtest_results r
  ON r.strategy = s.name AND r.version = s.version AND r.run_date = :run_date AND r.phase = 'score'
WHERE (s.status = 'active' OR EXISTS (
         SELECT 1 FROM ranking_history h
         WHERE h.run_date = :run_date AND h.item_type = 'strategy' AND h.decision = 'archived'
           AND h.item = s.name || '@' || s.version))
  AND (s.origin = 'builtin' OR s.created_run_date IS NULL OR s.created_run_date < :run_date)
ORDER BY s.name, s.version, r.symbol
