-- Gaps of one symbol and bar size not closed yet, oldest first.
SELECT gap_start, gap_end, missing_bars, run_date, fetch_attempts
FROM candle_gaps
WHERE symbol = :symbol AND timeframe = :timeframe AND closed_at IS NULL
ORDER BY gap_start
