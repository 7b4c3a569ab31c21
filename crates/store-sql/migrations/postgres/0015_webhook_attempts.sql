-- Issue 17: each webhook's last posts (the dashboard's delivery log): the
-- events' storage positions, whether it was delivered, the failure's class.
CREATE TABLE webhook_attempts (
    id         BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    first_pos  BIGINT NOT NULL,
    last_pos   BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    delivered  BIGINT NOT NULL,
    error      TEXT,
    millis     BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
