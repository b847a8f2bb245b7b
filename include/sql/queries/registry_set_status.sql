-- Move one strategy version to :status. Archiving records why, and when it was first
-- archived (archiving an archived version again keeps that time); any other status
-- clears both. SET expressions read the row as it was before the update.
UPDATE strategies
SET archived_at = CASE WHEN :status <> 'archived' THEN NULL
                       WHEN status = 'archived' AND archived_at IS NOT NULL THEN archived_at
                       ELSE :now END,
    archive_reason = CASE WHEN :status = 'archived' THEN :reason ELSE NULL END,
    status = :status
WHERE name = :name AND version = :version
