-- Close one gap: its bars arrived (or the ones still missing are recorded as new gaps).
UPDATE candle_gaps SET closed_at = :closed_at
WHERE symbol = :symbol AND timeframe = :timeframe AND gap_start = :gap_start
