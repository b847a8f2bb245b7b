-- strategies.status, archive_reason and archived_at (the run date it was archived from)
-- follow the version's latest status history entry; a version without entries keeps its row.
UPDATE strategies
SET status = COALESCE((SELECT h.status FROM strategy_status_history h
                       WHERE h.name = strategies.name AND h.version = strategies.version
                       ORDER BY h.from_date DESC, h.seq DESC LIMIT 1), status),
    archive_reason = (SELECT CASE WHEN h.status = 'archived' THEN h.reason END FROM strategy_status_history h
                      WHERE h.name = strategies.name AND h.version = strategies.version
                      ORDER BY h.from_date DESC, h.seq DESC LIMIT 1),
    archived_at = (SELECT CASE WHEN h.status = 'archived' THEN h.from_date END FROM strategy_status_history h
                   WHERE h.name = strategies.name AND h.version = strategies.version
                   ORDER BY h.from_date DESC, h.seq DESC LIMIT 1)
WHERE name = :name AND version = :version
  AND EXISTS (SELECT 1 FROM strategy_status_history h WHERE h.name = strategies.name AND h.version = strategies.version)
