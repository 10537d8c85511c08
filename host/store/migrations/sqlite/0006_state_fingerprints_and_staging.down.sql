DROP TABLE staged_objects;
DROP INDEX runs_task;
ALTER TABLE runs DROP COLUMN task_id;
CREATE TABLE stream_state_old (
    job        TEXT NOT NULL,
    stream     TEXT NOT NULL,
    partition  TEXT NOT NULL,
    state      TEXT NOT NULL,
    run_id     INTEGER REFERENCES runs (id),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (job, stream, partition)
);
INSERT OR REPLACE INTO stream_state_old (job, stream, partition, state, run_id, updated_at)
    SELECT job, stream, partition, state, run_id, updated_at FROM stream_state ORDER BY updated_at;
DROP TABLE stream_state;
ALTER TABLE stream_state_old RENAME TO stream_state;
