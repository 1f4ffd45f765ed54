-- The values of a workflow's `vars`, computed once at start (secrets masked).
ALTER TABLE executions ADD COLUMN vars TEXT;
