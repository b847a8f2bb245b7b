-- Candles of one symbol and bar size in [:start_ms, :end_ms), oldest first.
SELECT ts, open, high, low, close, volume
FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe AND ts >= :start_ms AND ts < :end_ms
ORDER BY ts
