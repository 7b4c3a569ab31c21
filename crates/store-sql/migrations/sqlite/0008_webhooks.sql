-- Issue 6: postback URLs. A webhook's cursor is a position in the events
-- table's storage order: SQLite's rowid, which grows with each insert.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    kinds         TEXT NOT NULL,
    batch_size    INTEGER NOT NULL,
    secret        TEXT NOT NULL,
    status        TEXT NOT NULL,
    cursor        INTEGER NOT NULL,
    failing_since INTEGER,
    last_error    TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id);
CREATE INDEX events_account_rowid ON events (account_id);
