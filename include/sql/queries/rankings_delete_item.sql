-- Withdraw one ranking decision of a run date (rank_and_update re-run replaces them).
DELETE FROM ranking_history WHERE run_date = :run_date AND item_type = :item_type AND item = :item
