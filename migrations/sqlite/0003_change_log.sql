-- Every change or removal of a client is logged, so that other processes on
-- the same file (the CLI, a restarted server) can drop it from their caches.
CREATE TABLE client_changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL
);

CREATE TRIGGER clients_changed_update AFTER UPDATE ON clients
BEGIN
    INSERT INTO client_changes (client_id) VALUES (old.client_id);
END;

CREATE TRIGGER clients_changed_delete AFTER DELETE ON clients
BEGIN
    INSERT INTO client_changes (client_id) VALUES (old.client_id);
END;
