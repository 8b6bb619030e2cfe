-- The authorization front's transactions (issue 18): one row from
-- /authorize to /token, shared by every instance. Only digests of the
-- gateway's state and code are kept; the provider's code (then the tokens
-- it was exchanged for, to revoke them on a replay) is sealed under a key
-- derived from the gateway code, which is never stored. Rows are removed
-- once expired.
CREATE TABLE front_transactions (
    state_hash     BLOB PRIMARY KEY,
    code_hash      BLOB UNIQUE,
    phase          TEXT NOT NULL CHECK (phase IN ('authorizing', 'code', 'redeemed', 'failed')),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    app_state      TEXT,
    code_challenge TEXT NOT NULL,
    scope          TEXT,
    resource       TEXT,
    sealed         BLOB,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX front_transactions_expires_at ON front_transactions (expires_at);

-- Clients described by Client ID Metadata Documents: the document's URL,
-- the client the gateway registered for it (through the usual pending →
-- active path), the digest of the document it was registered from, and
-- until when that copy is fresh (the document's max-age within the
-- operator's bounds). Counted per host against the operator's cap.
CREATE TABLE front_cimd_clients (
    url           TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    document_hash BLOB NOT NULL,
    fresh_until   INTEGER NOT NULL
);
CREATE INDEX front_cimd_clients_host ON front_cimd_clients (host);
