-- Versions a research step registered on :run_date (origin :origin) that no other run date
-- has results or ranking decisions for: a re-run of the step may delete them.
SELECT s.name, s.version FROM strategies s
WHERE s.created_run_date = :run_date AND s.origin = :origin
  AND NOT EXISTS (SELECT 1 FROM strategy_backtest_results r
                  WHERE r.strategy = s.name AND r.version = s.version AND r.run_date <> :run_date)
  AND NOT EXISTS (SELECT 1 FROM ranking_history h
                  WHERE h.item_type = 'strategy' AND h.item = s.name || '@' || CAST(s.version AS TEXT)
                    AND h.run_date <> :run_date)
ORDER BY s.name, s.version
