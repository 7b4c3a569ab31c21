-- Issue 5: what bounces need. Brand-wide suppressions (complaints and
-- unsubscribes, kept on the brand's master account); the index of each
-- accepted recipient, which VERP tokens name; the Message-ID header of
-- each accepted message, for bounces that carry only that.
ALTER TABLE suppressions ADD COLUMN brand INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN rcpt_index BIGINT;
CREATE INDEX events_message_kind ON events (message_id, kind, rcpt_index);
CREATE TABLE message_ids (
    header_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (header_id, message_id)
);
