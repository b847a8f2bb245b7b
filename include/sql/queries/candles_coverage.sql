-- Candle coverage per symbol, timeframe and source of the bars in [:start_ms, :end_ms) (a
-- run's scoring window).
SELECT symbol, timeframe, source, COUNT(*) AS n_bars, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM candles
WHERE ts >= :start_ms AND ts < :end_ms
GROUP BY symbol, timeframe, source
ORDER BY symbol, timeframe, source
