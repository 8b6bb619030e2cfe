-- The authorization front, third trust pass (issue 27).
--
-- Logins: a login in progress is stored nowhere; it travels sealed (under
-- store.encryption_key) in the state the gateway sends the provider. A row
-- is written when the provider answers: named by the digest of that state,
-- so a state is answered once, and kept until the state has expired
-- (keep_until) even when the code has not (expires_at). A code records
-- whether it was replayed, so that the first redemption, if still under
-- way, revokes what it got. Rows live minutes: the table is made anew, and
-- logins in progress at the upgrade start again.
DROP TABLE front_transactions;
CREATE TABLE front_transactions (
    state_hash     BYTEA PRIMARY KEY,
    code_hash      BYTEA UNIQUE,
    phase          TEXT NOT NULL CHECK (phase IN ('code', 'redeemed', 'failed')),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    app_state      TEXT,
    code_challenge TEXT NOT NULL,
    scope          TEXT,
    resource       TEXT,
    sealed         BYTEA,
    replayed       INTEGER NOT NULL DEFAULT 0,
    expires_at     BIGINT NOT NULL,
    keep_until     BIGINT NOT NULL
);
CREATE INDEX front_transactions_keep_until ON front_transactions (keep_until);

-- Document clients: a row with an empty client_id is a place reserved for a
-- document whose client is being registered (until fresh_until), so that
-- the caps per host and in all hold however many first sights race; each
-- row remembers when its client was last used, so that the janitor removes
-- document clients nobody uses. Looked up by client too: a document's client
-- is used only by its URL.
ALTER TABLE front_cimd_clients ADD COLUMN last_used BIGINT NOT NULL DEFAULT 0;
CREATE INDEX front_cimd_clients_client_id ON front_cimd_clients (client_id);
CREATE INDEX front_cimd_clients_last_used ON front_cimd_clients (last_used);
