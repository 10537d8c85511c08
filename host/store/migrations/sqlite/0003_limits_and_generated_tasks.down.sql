DROP INDEX tasks_running_limited;
DROP INDEX tasks_ready_limited;
ALTER TABLE attempts DROP COLUMN resumed_from;
ALTER TABLE tasks DROP COLUMN limit_max;
ALTER TABLE tasks DROP COLUMN limit_key;
