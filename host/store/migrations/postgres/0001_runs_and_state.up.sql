-- One row per `sluice run`: what ran, how it ended, what it moved.
CREATE TABLE runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT    NOT NULL,
    started_at  TEXT    NOT NULL DEFAULT (to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    finished_at TEXT,
    -- running | succeeded | failed
    status      TEXT    NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed')),
    rows        BIGINT NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX runs_job ON runs (job, id);

-- The last committed state of each partition of each stream of a job:
-- written only after the sink committed the data it covers.
CREATE TABLE stream_state (
    job        TEXT NOT NULL,
    stream     TEXT NOT NULL,
    partition  TEXT NOT NULL,
    state      TEXT NOT NULL,
    run_id     BIGINT REFERENCES runs (id),
    updated_at TEXT NOT NULL DEFAULT (to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    PRIMARY KEY (job, stream, partition)
);
