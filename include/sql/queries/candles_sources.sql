-- Which data sources the candles in a window came from (the forward record and the signals
-- say when they were computed on the synthetic sample market).
SELECT DISTINCT source FROM candles
WHERE timeframe = :timeframe AND ts >= :start_ms AND ts < :end_ms
