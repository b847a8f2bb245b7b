-- Count one more attempt to fetch a gap's bars again.
UPDATE candle_gaps SET fetch_attempts = fetch_attempts + 1
WHERE symbol = :symbol AND timeframe = :timeframe AND gap_start = :gap_start
