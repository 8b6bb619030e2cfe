-- A replace in progress holds a lease on its client until it ends, so that
-- two changes never race at the provider; a lease left behind by an unknown
-- outcome marks the client for reconcile to send to the provider again.
-- The revision tells a change whether the row is still the one it read.
ALTER TABLE clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN lease_until INTEGER;
CREATE INDEX clients_lease_until ON clients (lease_until);
