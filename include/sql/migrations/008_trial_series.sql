-- Issue 11, decision 6: the deflated Sharpe ratio's trial count N counts out-of-sample
-- series, one per (item, symbol) evaluated for a decision, all origins (strategy versions,
-- ML models, ensembles); parameter candidates and Optuna trials, fitted on training parts
-- only, are no longer counted. research_trials.n_trials (configurations per item) becomes
-- n_series (symbols the item was evaluated on that date).
ALTER TABLE research_trials RENAME COLUMN n_trials TO n_series;

-- The rows already stored counted configurations: what each (date, version) was evaluated
-- on is in its results; a row without any result had no out-of-sample series.
UPDATE research_trials SET n_series = (
    SELECT COUNT(DISTINCT r.symbol) FROM strategy_backtest_results r
    WHERE r.run_date = research_trials.run_date
      AND r.strategy || '@' || CAST(r.version AS TEXT) = research_trials.item);
DELETE FROM research_trials WHERE n_series = 0;
