-- A reserved batch attempt learns the id of the batch it was submitted in.
UPDATE llm_usage SET request_id = :batch_id WHERE attempt_id = :attempt_id AND status = 'reserved'
