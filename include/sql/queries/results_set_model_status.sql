-- Keep or archive one ML model of a run date (archive_reason NULL when kept).
UPDATE ml_model_results SET status = :status, archive_reason = :reason
WHERE run_date = :run_date AND model_name = :name
