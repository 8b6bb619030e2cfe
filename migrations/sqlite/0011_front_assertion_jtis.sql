-- Client assertions (private_key_jwt) already used: the digest of client id
-- and jti, kept until the assertion expires, so that each is accepted once
-- across all instances (RFC 7523 §3).
CREATE TABLE front_assertion_jtis (
    jti_hash   BLOB PRIMARY KEY,
    keep_until INTEGER NOT NULL
);
CREATE INDEX front_assertion_jtis_keep_until ON front_assertion_jtis (keep_until);
