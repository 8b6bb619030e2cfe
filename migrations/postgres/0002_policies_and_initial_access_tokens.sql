-- Which policy a client was registered under, its software_id (for the
-- per-software limit), when it expires (client lifetime; NULL = never), and
-- the initial access token that let it register.
ALTER TABLE clients ADD COLUMN policy TEXT;
ALTER TABLE clients ADD COLUMN software_id TEXT;
ALTER TABLE clients ADD COLUMN expires_at BIGINT;
ALTER TABLE clients ADD COLUMN initial_access_token_id TEXT;
CREATE INDEX clients_software_id ON clients (software_id);
CREATE INDEX clients_expires_at ON clients (expires_at);

-- Initial access tokens (RFC 7591 §3), stored as SHA-256 digests.
CREATE TABLE initial_access_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    uses_left  BIGINT,             -- NULL: unlimited
    expires_at BIGINT,             -- NULL: never
    policy     TEXT,
    note       TEXT,
    created_at BIGINT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0
);
