-- The authorization front, third trust pass (issue 27).
--
-- Transactions: a transaction may wait for the user's consent (phase
-- 'consent', named by the digest of the consent page's form token and bound
-- to the digest of the browser's cookie, holding the provider URL to send the
-- user to once they agree); each carries the digest of the address that
-- opened it, so that an address and a client get only a share of the live
-- ones; a code records whether it was replayed, so that the first
-- redemption, if still under way, revokes what it got. Transactions live
-- minutes: the table is made anew, and logins in progress at the upgrade
-- start again.
DROP TABLE front_transactions;
CREATE TABLE front_transactions (
    state_hash     BLOB PRIMARY KEY,
    code_hash      BLOB UNIQUE,
    consent_hash   BLOB UNIQUE,
    browser_hash   BLOB,
    phase          TEXT NOT NULL
                   CHECK (phase IN ('consent', 'authorizing', 'code', 'redeemed', 'failed')),
    caller         TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    app_state      TEXT,
    code_challenge TEXT NOT NULL,
    scope          TEXT,
    resource       TEXT,
    provider_url   TEXT,
    sealed         BLOB,
    replayed       INTEGER NOT NULL DEFAULT 0,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX front_transactions_expires_at ON front_transactions (expires_at);
CREATE INDEX front_transactions_caller ON front_transactions (caller, expires_at);
CREATE INDEX front_transactions_client ON front_transactions (client_id, expires_at);

-- Document clients: a row with an empty client_id is a place reserved for a
-- document whose client is being registered (until fresh_until), so that
-- the caps per host and in all hold however many first sights race; each
-- row remembers when its client was last used, so that the janitor removes
-- document clients nobody uses. Looked up by client too: a document's client
-- is used only by its URL.
ALTER TABLE front_cimd_clients ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
CREATE INDEX front_cimd_clients_client_id ON front_cimd_clients (client_id);
CREATE INDEX front_cimd_clients_last_used ON front_cimd_clients (last_used);
