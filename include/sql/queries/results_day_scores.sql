-- The run date's scoring results (phase 'score'), one row per strategy version and symbol.
SELECT strategy, version, symbol, score, sharpe, deflated_sharpe, total_return, max_drawdown,
       win_rate, n_trades, turnover
FROM strategy_backtest_results
WHERE run_date = :run_date AND phase = 'score'
ORDER BY strategy, version, symbol
