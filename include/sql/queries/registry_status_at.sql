-- Every strategy version with its status at a point of a run date: the latest status
-- history entry before :run_date, or on it from a step up to :seq (seq -1: as the date
-- started). Versions with no entry by then are left out (they did not exist yet).
SELECT s.name, s.version, s.category, s.params, s.param_space, s.code, s.code_hash, h.status, s.origin,
       s.parent, s.rationale, s.created_run_date, s.fitted_until, h.from_date AS status_from, h.reason AS status_reason
FROM strategies s
JOIN (SELECT e.name, e.version, e.status, e.from_date, e.reason,
             ROW_NUMBER() OVER (PARTITION BY e.name, e.version ORDER BY e.from_date DESC, e.seq DESC) AS rn
      FROM strategy_status_history e
      WHERE e.from_date < :run_date OR (e.from_date = :run_date AND e.seq <= :seq)) h
  ON h.name = s.name AND h.version = s.version AND h.rn = 1
ORDER BY s.name, s.version
