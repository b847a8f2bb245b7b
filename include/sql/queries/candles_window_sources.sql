-- The sources of one symbol's stored bars at one bar size in [:start_ms, :end_ms).
SELECT DISTINCT source FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe AND ts >= :start_ms AND ts < :end_ms
ORDER BY source
