-- The forward record as it stood on :run_date: every row of that date and before, each
-- strategy's symbols in date order.
SELECT run_date, strategy, version, symbol, timeframe, promoted_on, code_hash, n_bars, day_return,
       expected_sharpe, bars, synthetic
FROM forward_returns
WHERE run_date <= :run_date
ORDER BY strategy, version, symbol, run_date
