-- Workflows, their sessions and attempts, and the task queue.
-- Times are milliseconds since the Unix epoch (UTC), the same in both backends.

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- One pushed version of a project: its files, as a JSON object path -> text.
CREATE TABLE revisions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id),
    name       TEXT    NOT NULL,
    files      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE schedules (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id        INTEGER NOT NULL REFERENCES projects (id),
    workflow          TEXT    NOT NULL,
    -- the schedule as the workflow file gives it (JSON)
    spec              TEXT    NOT NULL,
    next_run_time     INTEGER NOT NULL,
    last_session_time INTEGER,
    enabled           INTEGER NOT NULL DEFAULT 1,
    UNIQUE (project_id, workflow)
);

-- One per workflow and session time: a scheduled time fires once.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects (id),
    workflow     TEXT    NOT NULL,
    session_time INTEGER NOT NULL,
    revision_id  INTEGER REFERENCES revisions (id),
    created_at   INTEGER NOT NULL,
    UNIQUE (project_id, workflow, session_time)
);

-- Each run of a session; a retry is a new attempt.
CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id     INTEGER NOT NULL REFERENCES sessions (id),
    -- running | succeeded | failed | killed
    status         TEXT    NOT NULL DEFAULT 'running',
    failed         INTEGER NOT NULL DEFAULT 0,
    kill_requested INTEGER NOT NULL DEFAULT 0,
    params         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE INDEX attempts_session ON attempts (session_id);
CREATE INDEX attempts_running ON attempts (status) WHERE status = 'running';

-- The queue. State machine:
--   dormant (an on_error handler) -> blocked | ready
--   blocked (waiting > 0) -> ready -> running -> succeeded | failed | cancelled
--   running -> ready (retry, expired lease, released at shutdown)
--   blocked | ready -> cancelled (attempt failed or killed)
-- group and skip rows are barriers the queue completes itself.
CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id     INTEGER NOT NULL REFERENCES attempts (id),
    parent_id      INTEGER,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    config         TEXT    NOT NULL,
    params         TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    waiting        INTEGER NOT NULL DEFAULT 0,
    retry_limit    INTEGER NOT NULL DEFAULT 0,
    retry_interval INTEGER NOT NULL DEFAULT 0,
    retry_backoff  INTEGER NOT NULL DEFAULT 0,
    retries        INTEGER NOT NULL DEFAULT 0,
    lease_count    INTEGER NOT NULL DEFAULT 0,
    lease_expiries INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    ready_at       INTEGER NOT NULL,
    leased_at      INTEGER,
    started_at     INTEGER,
    finished_at    INTEGER,
    on_error_of    INTEGER,
    error_root     INTEGER,
    error          TEXT,
    summary        TEXT
);
CREATE INDEX tasks_ready ON tasks (ready_at, id) WHERE state = 'ready';
CREATE INDEX tasks_leased ON tasks (lease_owner) WHERE state = 'running';
CREATE INDEX tasks_expiring ON tasks (lease_expires) WHERE state = 'running';
CREATE INDEX tasks_attempt ON tasks (attempt_id, state);
CREATE INDEX tasks_root ON tasks (attempt_id) WHERE parent_id IS NULL;
CREATE INDEX tasks_error_root ON tasks (error_root) WHERE error_root IS NOT NULL;
CREATE INDEX tasks_on_error_of ON tasks (on_error_of) WHERE on_error_of IS NOT NULL;

CREATE TABLE task_edges (
    upstream   INTEGER NOT NULL,
    downstream INTEGER NOT NULL,
    PRIMARY KEY (upstream, downstream)
);
CREATE INDEX task_edges_downstream ON task_edges (downstream);

-- Where each lease of a task wrote its log.
CREATE TABLE task_logs (
    task_id    INTEGER NOT NULL,
    lease      INTEGER NOT NULL,
    location   TEXT    NOT NULL,
    worker     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (task_id, lease)
);

-- Encrypted at rest (AES-256-GCM); the key never reaches the database.
CREATE TABLE secrets (
    project_id INTEGER NOT NULL REFERENCES projects (id),
    name       TEXT    NOT NULL,
    nonce      BLOB    NOT NULL,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    roles        TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopping     INTEGER NOT NULL DEFAULT 0
);
