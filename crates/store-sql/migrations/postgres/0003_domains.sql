-- Sending domains and their DKIM keys (issue 4). A domain belongs to one
-- account; its keys go with it.
CREATE TABLE domains (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name          TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    -- When every record was last found as expected; NULL: not (yet) verified.
    verified_at   BIGINT
);
CREATE INDEX domains_account ON domains(account_id);

CREATE TABLE dkim_keys (
    id            TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector      TEXT NOT NULL,
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    -- The private key, sealed (AES-256-GCM) under a key derived from the
    -- platform secret; never stored in clear.
    private_key   TEXT NOT NULL,
    -- The public key as published in the p= tag.
    public_key    TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
    created_at    BIGINT NOT NULL,
    changed_at    BIGINT NOT NULL,
    UNIQUE (domain_id, selector)
);
CREATE INDEX dkim_keys_domain ON dkim_keys(domain_id);
