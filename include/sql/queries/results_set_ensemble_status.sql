-- Keep or archive one ML ensemble of a run date (archive_reason NULL when kept).
UPDATE ml_ensembles SET status = :status, archive_reason = :reason
WHERE run_date = :run_date AND ensemble_name = :name
