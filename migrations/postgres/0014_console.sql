-- The operator console (issue 31).
--
-- Operator tokens: made by `dcr-gateway operator create`, kept as SHA-256
-- digests; a console session names its token, so revoking the token ends
-- its sessions.
CREATE TABLE operator_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,             -- NULL: never
    revoked    BIGINT NOT NULL DEFAULT 0
);

-- What the gateway did, counted per hour and kind (registrations, RFC 7592
-- calls, logins, token grants, refusals, rate-limit hits): each instance
-- adds its counts every few seconds.
CREATE TABLE activity (
    hour  BIGINT NOT NULL,
    kind  TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (hour, kind)
);

-- Each client's audit trail: what was done to it, when, by whom. Kept
-- after the client is gone (it is the record of its removal), pruned by age.
CREATE TABLE audit_trail (
    at        BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    actor     TEXT
);
CREATE INDEX audit_trail_client ON audit_trail (client_id, at);
CREATE INDEX audit_trail_at ON audit_trail (at);
