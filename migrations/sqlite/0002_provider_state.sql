-- What a provider backend keeps per client (e.g. an upstream's registration
-- access token), sealed with the configured key.
ALTER TABLE clients ADD COLUMN provider_state BLOB;
CREATE INDEX clients_state_updated ON clients (state, updated_at);
