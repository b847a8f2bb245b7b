-- Candle coverage per symbol, timeframe and source.
SELECT symbol, timeframe, source, COUNT(*) AS n_bars, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM candles
GROUP BY symbol, timeframe, source
ORDER BY symbol, timeframe, source
