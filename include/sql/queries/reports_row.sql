-- The stored daily report of a run date, with its AI review when merged.
SELECT report, ai_review, ai_review_mode FROM daily_reports WHERE run_date = :run_date
