-- The run date's ML ensembles with every metric the ranker may sort by.
SELECT ensemble_name AS item, method, symbol, status,
       f1, accuracy, precision, recall, roc_auc, log_loss, backtest_sharpe, backtest_return
FROM ml_ensembles
WHERE run_date = :run_date
ORDER BY ensemble_name
