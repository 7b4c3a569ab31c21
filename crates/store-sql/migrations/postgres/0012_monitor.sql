-- Issue 16: blocklist listings (one row per listing, open while ended_at is
-- NULL), the targets each account is concerned by (rewritten by each
-- scheduled check), and alerts (one open row per account and condition).
CREATE TABLE blocklist_listings (
    id           BIGSERIAL PRIMARY KEY,
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    list         TEXT NOT NULL,
    name         TEXT NOT NULL,
    codes        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    delist_url   TEXT,
    weight       BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE UNIQUE INDEX blocklist_listings_open ON blocklist_listings (target, list) WHERE ended_at IS NULL;
CREATE INDEX blocklist_listings_target ON blocklist_listings (target, started_at);

CREATE TABLE monitor_targets (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    target     TEXT NOT NULL,
    origin     TEXT NOT NULL,
    PRIMARY KEY (account_id, target, origin)
);
CREATE INDEX monitor_targets_target ON monitor_targets (target);

CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    message         TEXT NOT NULL,
    opened_at       BIGINT NOT NULL,
    notified_at     BIGINT NOT NULL,
    resolved_at     BIGINT,
    acknowledged_at BIGINT
);
CREATE UNIQUE INDEX alerts_open ON alerts (account_id, key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_account_opened ON alerts (account_id, opened_at);
