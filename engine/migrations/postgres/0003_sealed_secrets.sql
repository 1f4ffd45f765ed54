-- Secret inputs and secret-derived vars of an execution, sealed with the installation's key
-- (never in plain text), so that any process sharing the key can resume it.
ALTER TABLE executions ADD COLUMN sealed TEXT;
