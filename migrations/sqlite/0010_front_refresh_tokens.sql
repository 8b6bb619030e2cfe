-- Broker mode's refresh tokens (issue 29): the gateway hands apps its own
-- opaque refresh tokens and keeps the provider's, sealed under the store
-- key, once per family (a sign-in). Tokens are kept as digests; a used one
-- stays until its family lapses, so that a replay is recognised and
-- revokes the family.
CREATE TABLE front_refresh_families (
    family_id  TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    scope      TEXT,
    resource   TEXT,
    subject    TEXT NOT NULL,
    upstream   BLOB NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL
);
CREATE INDEX front_refresh_families_expires_at ON front_refresh_families (expires_at);

CREATE TABLE front_refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES front_refresh_families (family_id) ON DELETE CASCADE,
    used       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX front_refresh_tokens_family_id ON front_refresh_tokens (family_id);
