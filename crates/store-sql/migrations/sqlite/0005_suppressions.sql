-- Addresses an account no longer sends to (issue 4: unsubscribes; issue 5
-- adds bounces, complaints and the list's API). One row per address.
CREATE TABLE suppressions (
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    source_event  TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, address)
);
