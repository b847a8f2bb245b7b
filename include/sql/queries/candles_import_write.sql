-- Write the staged bars in (:after_ts, :until_ts] to the symbol's series: those not stored
-- yet, and with :overwrite = 1 those stored with other values. Identical stored bars are
-- left as they are (and keep their ingested_at).
INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume, volume_quote, source, ingested_at)
SELECT :symbol, :timeframe, s.ts, s.open, s.high, s.low, s.close, s.volume, NULL, :source, :ingested_at
FROM candle_import s
LEFT JOIN candles c ON c.symbol = :symbol AND c.timeframe = :timeframe AND c.ts = s.ts
WHERE s.ts > :after_ts AND s.ts <= :until_ts
  AND (c.ts IS NULL
       OR (:overwrite = 1 AND NOT (c.open = s.open AND c.high = s.high AND c.low = s.low
                                   AND c.close = s.close AND c.volume = s.volume)))
ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, volume_quote = excluded.volume_quote, source = excluded.source,
    ingested_at = excluded.ingested_at
