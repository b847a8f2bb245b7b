-- The timeframe and metrics (JSON, with oos_bars) of every strategy result of the run date:
-- the out-of-sample length T behind the date's deflated Sharpe ratios.
SELECT timeframe, metrics FROM strategy_backtest_results WHERE run_date = :run_date ORDER BY strategy, version, symbol
