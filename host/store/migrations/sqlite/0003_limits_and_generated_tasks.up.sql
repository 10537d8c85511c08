-- Concurrency limits: a task of a workflow with `max_running` carries the
-- workflow's key and its limit; the queue leases it only while fewer than
-- that many tasks with the same key run.
ALTER TABLE tasks ADD COLUMN limit_key TEXT;
ALTER TABLE tasks ADD COLUMN limit_max BIGINT;
CREATE INDEX tasks_ready_limited ON tasks (limit_key) WHERE state = 'ready' AND limit_key IS NOT NULL;
CREATE INDEX tasks_running_limited ON tasks (limit_key) WHERE state = 'running' AND limit_key IS NOT NULL;

-- The attempt an attempt resumes: tasks generated while it runs
-- (for_each_row) skip what succeeded there, as the first graph did.
ALTER TABLE attempts ADD COLUMN resumed_from BIGINT;
