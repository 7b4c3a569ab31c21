-- Issue 6: hourly rollups, kept in the transaction that stores the events
-- (from the events actually inserted, so a retried batch counts once).
-- Each event counts in one row per breakdown (`dim`: '' for the total,
-- 'stream', 'sender_domain', 'ip', 'receiving_domain'; `value` the event's
-- value of it), so any one question reads only its own rows: a month per
-- hour is 720 rows per account and value.
CREATE TABLE stats_hourly (
    account_id       TEXT NOT NULL,
    dim              TEXT NOT NULL,
    hour             BIGINT NOT NULL,
    value            TEXT NOT NULL,
    accepted         BIGINT NOT NULL,
    delivered        BIGINT NOT NULL,
    deferred         BIGINT NOT NULL,
    bounced_hard     BIGINT NOT NULL,
    bounced_soft     BIGINT NOT NULL,
    dropped          BIGINT NOT NULL,
    expired          BIGINT NOT NULL,
    complained       BIGINT NOT NULL,
    unsubscribed     BIGINT NOT NULL,
    opened           BIGINT NOT NULL,
    opened_unique    BIGINT NOT NULL,
    opened_machine   BIGINT NOT NULL,
    clicked          BIGINT NOT NULL,
    clicked_unique   BIGINT NOT NULL,
    clicked_machine  BIGINT NOT NULL,
    PRIMARY KEY (account_id, dim, hour, value)
);
-- The first human open and click of each message and recipient: what makes
-- an open or a click unique.
CREATE TABLE engagement_firsts (
    message_id TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    PRIMARY KEY (message_id, recipient, kind)
);
