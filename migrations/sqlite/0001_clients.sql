-- Registered clients. Secrets are stored only as SHA-256 digests.
CREATE TABLE clients (
    client_id                TEXT PRIMARY KEY NOT NULL,
    state                    TEXT NOT NULL CHECK (state IN ('pending', 'active', 'deleting')),
    -- RFC 7591 metadata document as registered, defaults applied.
    metadata                 TEXT NOT NULL,
    registration_token_hash  BLOB NOT NULL,
    client_secret_hash       BLOB,
    client_secret_expires_at INTEGER NOT NULL DEFAULT 0,
    client_id_issued_at      INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
) STRICT;
