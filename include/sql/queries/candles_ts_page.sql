-- Open times of stored bars in (:after_ts, :last_ts], oldest first, a page at a time.
SELECT ts FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe AND ts > :after_ts AND ts <= :last_ts
ORDER BY ts
LIMIT :limit
