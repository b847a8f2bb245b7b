-- Merge the AI review into a stored daily report (the report text carries it too, with the
-- day's LLM cost read again after the review's own calls).
UPDATE daily_reports
SET report = :report, summary = :summary, ai_review = :review, ai_review_mode = :mode, json_path = :json_path,
    html_path = :html_path, updated_at = :now
WHERE run_date = :run_date
