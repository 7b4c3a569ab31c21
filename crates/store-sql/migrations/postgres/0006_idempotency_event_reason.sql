-- Why a message was dropped for a recipient (suppressed, ...).
ALTER TABLE events ADD COLUMN reason TEXT;

-- Answers of the send API remembered under Idempotency-Key for 24 hours.
-- status and body are NULL while the first request is being handled.
CREATE TABLE idempotency_keys (
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
