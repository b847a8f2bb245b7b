-- The last bar time of the next page of :limit staged bars after :after_ts (NULL: none left).
SELECT MAX(ts) AS ts FROM (SELECT ts FROM candle_import WHERE ts > :after_ts ORDER BY ts LIMIT :limit) page
