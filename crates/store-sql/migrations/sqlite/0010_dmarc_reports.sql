-- Issue 7: the deliverability center's reports. One row a report; its parsed
-- content is in `body` (deflated JSON), read by the analytics, never by SQL.
CREATE TABLE dmarc_reports (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_name      TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    domain        TEXT NOT NULL,
    begin_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    origin        TEXT NOT NULL,
    source_name   TEXT,
    record_count  INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    body          BLOB NOT NULL,
    UNIQUE (kind, org_name, report_id, domain)
);
CREATE INDEX dmarc_reports_domain ON dmarc_reports (domain, end_at);
-- Reports that could not be read, kept with the reason (never dropped).
CREATE TABLE dmarc_broken_reports (
    id          INTEGER PRIMARY KEY,
    digest      TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    origin      TEXT NOT NULL,
    source_name TEXT,
    error       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    raw         BLOB NOT NULL
);
