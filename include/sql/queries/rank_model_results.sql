-- The run date's ML models with every metric the ranker may sort by.
SELECT model_name AS item, model_type, symbol, status,
       f1, accuracy, precision, recall, roc_auc, log_loss, backtest_sharpe, backtest_return
FROM ml_model_results
WHERE run_date = :run_date
ORDER BY model_name
