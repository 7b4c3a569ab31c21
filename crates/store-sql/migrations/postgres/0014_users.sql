-- Issue 17: dashboard users (one account each, e-mail unique across the
-- platform, argon2 hash, failed sign-ins counted on the row) and their
-- sessions (kept by the SHA-256 of the token).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE,
    hash          TEXT NOT NULL,
    operator      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    last_login_at BIGINT
);
CREATE INDEX users_account ON users (account_id, created_at);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
