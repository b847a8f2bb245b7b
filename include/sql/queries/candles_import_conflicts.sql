-- The first staged bar times whose repeats have different values, with both lines.
SELECT ts, line, conflict_line FROM candle_import
WHERE conflict_line IS NOT NULL
ORDER BY conflict_line
LIMIT :limit
