-- Strategy versions active when the run date started: active now, or archived by that
-- date's own ranking; and existing before it (built-ins always do). A retried or
-- backfilled date thus works on the same portfolio as its first run did. Rule files only.
SELECT s.* FROM strategies s
WHERE (s.status = 'active' OR EXISTS (
         SELECT 1 FROM ranking_history h
         WHERE h.run_date = :run_date AND h.item_type = 'strategy' AND h.decision = 'archived'
           AND h.item = s.name || '@' || s.version))
  AND (s.origin = 'builtin' OR s.created_run_date IS NULL OR s.created_run_date < :run_date)
  AND s.origin <> 'ml'  -- ML ensembles are scored by train_ml_models from their OOS positions
ORDER BY s.name, s.version
