-- Registered clients. Secrets are stored only as SHA-256 digests; provider
-- state is sealed by the gateway before it gets here.
CREATE TABLE clients (
    client_id                TEXT PRIMARY KEY,
    state                    TEXT NOT NULL CHECK (state IN ('pending', 'active', 'deleting')),
    metadata                 TEXT NOT NULL,
    registration_token_hash  BYTEA NOT NULL,
    client_secret_hash       BYTEA,
    client_secret_expires_at BIGINT NOT NULL DEFAULT 0,
    client_id_issued_at      BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    provider_state           BYTEA
);
CREATE INDEX clients_state_updated ON clients (state, updated_at);

-- Every change or removal of a client tells the other instances, so that
-- they drop it from their caches (LISTEN dcr_gateway_clients).
CREATE FUNCTION dcr_gateway_notify_client_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('dcr_gateway_clients', OLD.client_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER clients_changed
    AFTER UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION dcr_gateway_notify_client_change();
