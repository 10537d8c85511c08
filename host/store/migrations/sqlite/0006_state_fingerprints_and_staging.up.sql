-- Saved state belongs to what a transfer reads and writes: each partition's
-- state is keyed by the job's name and the fingerprint of its source and
-- sink (plugins, resolved configs, grants). State saved before fingerprints
-- has an empty one; the first run that loads it adopts it.
CREATE TABLE stream_state_new (
    job         TEXT NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    stream      TEXT NOT NULL,
    partition   TEXT NOT NULL,
    state       TEXT NOT NULL,
    run_id      INTEGER REFERENCES runs (id),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (job, fingerprint, stream, partition)
);
INSERT INTO stream_state_new (job, stream, partition, state, run_id, updated_at)
    SELECT job, stream, partition, state, run_id, updated_at FROM stream_state;
DROP TABLE stream_state;
ALTER TABLE stream_state_new RENAME TO stream_state;

-- The task a run belongs to on a fleet, so that a reclaimed lease marks the
-- dead worker's run failed.
ALTER TABLE runs ADD COLUMN task_id INTEGER;
CREATE INDEX runs_task ON runs (task_id) WHERE task_id IS NOT NULL;

-- Objects being written (a temporary file, a multipart upload) until they
-- are published or discarded. What a killed process leaves here, a later
-- run of the same job discards, unless its commit saved state: then
-- (`committed`) the later run publishes it at `path` with `publish_token`.
-- `owner` says who wrote it: `task:<id>` on a fleet, `pid:<pid>@<host>`
-- for `sluice run`.
CREATE TABLE staged_objects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job        TEXT NOT NULL,
    owner      TEXT NOT NULL,
    location   TEXT NOT NULL,
    token      TEXT NOT NULL,
    committed  INTEGER NOT NULL DEFAULT 0,
    publish_token TEXT,
    path       TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX staged_objects_job ON staged_objects (job);
