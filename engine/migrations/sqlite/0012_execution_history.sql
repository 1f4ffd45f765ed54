-- Execution lists at scale (a million rows): each list the console and the API open is
-- ordered `created_at DESC, id`, so each has an index in that order, and reading a page
-- is a walk down an index instead of a sort of every matching row.
CREATE INDEX executions_recent ON executions (created_at DESC, id);
CREATE INDEX executions_by_org ON executions (org, created_at DESC, id);
CREATE INDEX executions_by_workflow_recent ON executions (workflow_name, created_at DESC, id);
CREATE INDEX executions_by_status_recent ON executions (status, created_at DESC, id);
DROP INDEX executions_by_workflow;
DROP INDEX executions_by_status;
-- Sub-workflows are few: indexing only them keeps `parent_id IS NULL` (top-level lists) from
-- being answered through this index, which would sort every top-level row for one page.
DROP INDEX executions_by_parent;
CREATE INDEX executions_by_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
