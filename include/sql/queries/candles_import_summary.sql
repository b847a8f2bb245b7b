-- The staged import: unique bars, exact repeats dropped, conflicting repeats, time span.
SELECT COUNT(*) AS n_bars, COALESCE(SUM(copies - 1), 0) AS duplicates,
       COUNT(conflict_line) AS conflicts, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM candle_import
