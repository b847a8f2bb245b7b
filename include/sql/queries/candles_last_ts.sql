SELECT MAX(ts) AS ts FROM candles WHERE symbol = :symbol AND timeframe = :timeframe AND ts < :end_ms
