-- Candle gaps found by the run date's validation, with when each was closed (NULL: open).
SELECT symbol, timeframe, gap_start, gap_end, missing_bars, closed_at
FROM candle_gaps
WHERE run_date = :run_date
ORDER BY symbol, timeframe, gap_start
