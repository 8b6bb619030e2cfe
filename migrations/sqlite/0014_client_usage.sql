-- When each client was last used (issue 31): an RFC 7592 call, or an
-- /authorize or /token at the front, recorded in batches. A client never
-- used has no row; its row goes with it.
CREATE TABLE client_usage (
    client_id    TEXT PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    last_used_at BIGINT NOT NULL
);
CREATE INDEX client_usage_last_used_at ON client_usage (last_used_at);
-- The janitor's idle sweep reads a policy's clients in id order.
CREATE INDEX clients_policy ON clients (policy, client_id);
