-- Withdraw the run date's ML ensembles (train_ml_models re-run replaces them).
DELETE FROM ml_ensembles WHERE run_date = :run_date
