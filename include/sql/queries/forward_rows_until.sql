-- The forward record as it stood on :run_date of the versions tracked that date: every row
-- of theirs up to that date, each version's symbols in date order. (Versions no longer
-- tracked keep their rows; they just take no part in that date's ranking and report.)
SELECT f.run_date, f.strategy, f.version, f.symbol, f.timeframe, f.promoted_on, f.code_hash, f.n_bars,
       f.day_return, f.expected_sharpe, f.bars, f.synthetic
FROM forward_returns f
WHERE f.run_date <= :run_date
  AND EXISTS (SELECT 1 FROM forward_returns t
              WHERE t.run_date = :run_date AND t.strategy = f.strategy AND t.version = f.version)
ORDER BY f.strategy, f.version, f.symbol, f.run_date
