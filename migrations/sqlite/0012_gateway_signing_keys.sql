-- The gateway's own signing keys (issue 30): the private key sealed under
-- the store key, so that every instance signs with the same one; a rotated
-- key is published until its last token expired (retired_at).
CREATE TABLE gateway_signing_keys (
    kid            TEXT PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    signs_from     INTEGER NOT NULL,
    retired_at     INTEGER
);
