-- Events: every step of every message (issue 3). Ids are time-ordered
-- (uuid v7), so ordering by id is ordering by creation, and a cursor is the
-- last id seen. No foreign key to accounts: events are history and outlive
-- the accounts they name.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    stream        TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    recipient     TEXT,
    sender        TEXT,
    source_ip     TEXT,
    mx            TEXT,
    smtp_code     INTEGER,
    smtp_enhanced TEXT,
    smtp_text     TEXT,
    smtp_phase    TEXT,
    bounce_class  TEXT,
    bounce_reason TEXT
);
CREATE INDEX events_account ON events(account_id, id);
CREATE INDEX events_message ON events(message_id, id);
CREATE INDEX events_recipient ON events(account_id, recipient, id);
