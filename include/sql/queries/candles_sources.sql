-- Which data sources the candles in a window came from (a report says when it is synthetic).
SELECT DISTINCT source FROM candles
WHERE timeframe = :timeframe AND ts >= :start_ms AND ts < :end_ms
