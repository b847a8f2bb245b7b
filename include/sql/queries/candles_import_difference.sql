-- One staged bar beside the stored one (line, then file and stored values).
SELECT s.line, s.open, s.high, s.low, s.close, s.volume,
       c.open AS stored_open, c.high AS stored_high, c.low AS stored_low, c.close AS stored_close,
       c.volume AS stored_volume
FROM candle_import s
JOIN candles c ON c.symbol = :symbol AND c.timeframe = :timeframe AND c.ts = s.ts
WHERE s.ts = :ts
