-- Candle gaps found by the run date's validation.
SELECT symbol, timeframe, gap_start, gap_end, missing_bars
FROM candle_gaps
WHERE run_date = :run_date
ORDER BY symbol, timeframe, gap_start
