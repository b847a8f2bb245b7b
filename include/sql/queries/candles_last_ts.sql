-- Open time of the newest stored candle of one symbol and bar size before :end_ms.
SELECT MAX(ts) AS ts FROM candles WHERE symbol = :symbol AND timeframe = :timeframe AND ts < :end_ms
