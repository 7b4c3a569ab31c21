-- Accounts, credentials and approved senders (issue 2).
-- Times are unix milliseconds (BIGINT) so both backends store the same values.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    -- NULL for a master. RESTRICT: a master with subs cannot be deleted.
    parent_id   TEXT REFERENCES accounts(id) ON DELETE RESTRICT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL
);
CREATE INDEX accounts_parent ON accounts(parent_id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    scope       TEXT NOT NULL CHECK (scope IN ('account', 'admin')),
    label       TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE smtp_credentials (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    username    TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    label       TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX smtp_credentials_account ON smtp_credentials(account_id);

CREATE TABLE approved_senders (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    rule        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, rule)
);

-- One-off facts about this store, such as when it was bootstrapped.
CREATE TABLE meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
