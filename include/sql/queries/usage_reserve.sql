-- A new attempt, before its request is sent: its worst-case cost is held until it settles.
INSERT INTO llm_usage (attempt_id, run_date, step, attempt, model, mode, status, reserved_usd, created_at)
VALUES (:attempt_id, :run_date, :step, :attempt, :model, :mode, 'reserved', :reserved_usd, :created_at)
