-- Issue 17: each webhook's last posts (the dashboard's delivery log): the
-- events' storage positions, whether it was delivered, the failure's class.
CREATE TABLE webhook_attempts (
    id         INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    first_pos  INTEGER NOT NULL,
    last_pos   INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    delivered  INTEGER NOT NULL,
    error      TEXT,
    millis     INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
