-- Issue 6: postback URLs. A webhook's cursor is a position in the events
-- table's storage order: `seq`, taken from a sequence as each row is
-- inserted (one writer, so positions follow commits).
ALTER TABLE events ADD COLUMN seq BIGSERIAL;
CREATE INDEX events_account_seq ON events (account_id, seq);
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    kinds         TEXT NOT NULL,
    batch_size    BIGINT NOT NULL,
    secret        TEXT NOT NULL,
    status        TEXT NOT NULL,
    cursor        BIGINT NOT NULL,
    failing_since BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id);
