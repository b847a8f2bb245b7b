-- Staged bars already stored for the symbol and bar size: how many, how many identical
-- (every value equal), and the first one that differs.
SELECT COUNT(*) AS stored,
       COALESCE(SUM(CASE WHEN c.open = s.open AND c.high = s.high AND c.low = s.low
                          AND c.close = s.close AND c.volume = s.volume THEN 1 ELSE 0 END), 0) AS identical,
       MIN(CASE WHEN c.open = s.open AND c.high = s.high AND c.low = s.low
                 AND c.close = s.close AND c.volume = s.volume THEN NULL ELSE s.ts END) AS first_differing_ts
FROM candle_import s
JOIN candles c ON c.symbol = :symbol AND c.timeframe = :timeframe AND c.ts = s.ts
