-- Withdraw the run date's ML models (train_ml_models re-run replaces them).
DELETE FROM ml_model_results WHERE run_date = :run_date
