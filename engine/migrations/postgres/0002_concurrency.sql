-- Per-workflow concurrency limits: an execution records the group it counts in (its
-- workflow's name and its rendered `concurrency.key`, '' without a key) and the limit it was
-- created under; NULL limit: unlimited. Workers count the group's running executions (under
-- an advisory lock on the group) before taking a queued one.
ALTER TABLE executions ADD COLUMN concurrency_key TEXT COLLATE "C";
ALTER TABLE executions ADD COLUMN concurrency_limit BIGINT;
CREATE INDEX executions_concurrency ON executions (workflow_name, concurrency_key, status)
    WHERE concurrency_key IS NOT NULL;
