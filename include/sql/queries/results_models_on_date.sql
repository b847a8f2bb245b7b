-- The run date's ML models with every metric the ranker may sort by (ranking, report).
SELECT model_name, model_type, symbol, version, n_train, n_test, f1, accuracy, precision, recall,
       roc_auc, log_loss, backtest_sharpe, backtest_return, up_share, status, archive_reason
FROM ml_model_results
WHERE run_date = :run_date
ORDER BY model_name
