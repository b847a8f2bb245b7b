-- The signals of one run date, best-ranked strategy first.
SELECT run_date, strategy, version, symbol, timeframe, rank, for_bar, position, promoted_on, code_hash, synthetic
FROM signals
WHERE run_date = :run_date
ORDER BY rank, strategy, version, symbol
