-- A tuned version's parameters were fitted on bars up to and including `fitted_until`
-- (ISO timestamp: the last candle handed to the tuner, whose search and keep decision saw
-- nothing later). Scoring never tests those parameters on a bar at or before it: a
-- walk-forward fold whose test part starts at or before fitted_until evaluates the version
-- exactly as its parent (docs/protocol/tune.md). NULL: not a parameter-only tune
-- (built-ins, designs, user files, LLM code changes).
ALTER TABLE strategies ADD COLUMN fitted_until TEXT;
