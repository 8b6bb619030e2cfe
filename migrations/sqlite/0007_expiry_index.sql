-- The expiry janitor pages through active clients whose lifetime has ended,
-- in order of expiry then id. This index serves each page as one range read
-- (the index on expires_at alone left the database a scan of every active
-- client and a sort per page: about a quarter of a second a page at a
-- million clients on SQLite).
DROP INDEX clients_expires_at;
CREATE INDEX clients_expiry ON clients (state, expires_at, client_id);
