-- Who may use the API: tokens for programs, users (with argon2id password
-- hashes) for the web UI, their signed-in sessions, and failed sign-ins
-- for the back-off. Secrets here are stored only as hashes.

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT    NOT NULL,
    -- viewer | operator | admin
    role         TEXT    NOT NULL,
    -- sha256 of the token, hex: the token itself is shown once, at creation
    hash         TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    -- a PHC string: $argon2id$v=19$...
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

-- A signed-in browser: the cookie's sha256 and the CSRF token that every
-- state-changing request made with this cookie must carry.
CREATE TABLE web_sessions (
    hash       TEXT    PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Failed sign-ins by the name tried (known or not), for the back-off.
CREATE TABLE login_failures (
    name         TEXT    PRIMARY KEY,
    failures     BIGINT  NOT NULL,
    locked_until BIGINT  NOT NULL
);
