-- Stored bars of one symbol and bar size with :first_ts <= ts <= :last_ts.
SELECT COUNT(*) AS n FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe AND ts >= :first_ts AND ts <= :last_ts
