-- The run date's ML ensembles with every metric the ranker may sort by (ranking, report).
SELECT ensemble_name, method, symbol, version, members, f1, accuracy, precision, recall, roc_auc,
       log_loss, backtest_sharpe, backtest_return, up_share, status, archive_reason
FROM ml_ensembles
WHERE run_date = :run_date
ORDER BY ensemble_name
