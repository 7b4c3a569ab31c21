-- Issue 7: the deliverability center's reports. One row a report; its parsed
-- content is in `body` (deflated JSON), read by the analytics, never by SQL.
CREATE TABLE dmarc_reports (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_name      TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    domain        TEXT NOT NULL,
    begin_at      BIGINT NOT NULL,
    end_at        BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    origin        TEXT NOT NULL,
    source_name   TEXT,
    record_count  BIGINT NOT NULL,
    message_count BIGINT NOT NULL,
    body          BYTEA NOT NULL,
    UNIQUE (kind, org_name, report_id, domain)
);
CREATE INDEX dmarc_reports_domain ON dmarc_reports (domain, end_at);
-- Reports that could not be read, kept with the reason (never dropped).
CREATE TABLE dmarc_broken_reports (
    id          BIGSERIAL PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,
    received_at BIGINT NOT NULL,
    origin      TEXT NOT NULL,
    source_name TEXT,
    error       TEXT NOT NULL,
    size        BIGINT NOT NULL,
    raw         BYTEA NOT NULL
);
