-- Delete up to :limit bars of one source from a symbol's series (a short write each).
DELETE FROM candles
WHERE symbol = :symbol AND timeframe = :timeframe AND source = :source
  AND ts IN (SELECT ts FROM candles WHERE symbol = :symbol AND timeframe = :timeframe AND source = :source
             ORDER BY ts LIMIT :limit)
