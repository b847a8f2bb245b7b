-- The sources of one symbol's stored series at one bar size: bars and last bar per source.
SELECT source, COUNT(*) AS n_bars, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe
GROUP BY source
ORDER BY source
