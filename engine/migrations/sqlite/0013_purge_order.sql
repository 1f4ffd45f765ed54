-- Retention deletes finished executions oldest first, in batches: each batch finds its rows
-- through this index instead of scanning every execution.
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;
