-- Saved state belongs to what a transfer reads and writes: each partition's
-- state is keyed by the job's name and the fingerprint of its source and
-- sink (plugins, resolved configs, grants). State saved before fingerprints
-- has an empty one; the first run that loads it adopts it.
ALTER TABLE stream_state ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE stream_state DROP CONSTRAINT stream_state_pkey;
ALTER TABLE stream_state ADD PRIMARY KEY (job, fingerprint, stream, partition);

-- The task a run belongs to on a fleet, so that a reclaimed lease marks the
-- dead worker's run failed.
ALTER TABLE runs ADD COLUMN task_id BIGINT;
CREATE INDEX runs_task ON runs (task_id) WHERE task_id IS NOT NULL;

-- Objects being written (a temporary file, a multipart upload) until they
-- are published or discarded. What a killed process leaves here, a later
-- run of the same job discards, unless its commit saved state: then
-- (`committed`) the later run publishes it at `path` with `publish_token`.
-- `owner` says who wrote it: `task:<id>` on a fleet, `pid:<pid>@<host>`
-- for `sluice run`.
CREATE TABLE staged_objects (
    id         BIGSERIAL PRIMARY KEY,
    job        TEXT NOT NULL,
    owner      TEXT NOT NULL,
    location   TEXT NOT NULL,
    token      TEXT NOT NULL,
    committed  INTEGER NOT NULL DEFAULT 0,
    publish_token TEXT,
    path       TEXT,
    created_at TEXT NOT NULL DEFAULT (to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
);
CREATE INDEX staged_objects_job ON staged_objects (job);
