-- The operator's directory of clients (the console's Clients page): clients
-- newest first (registration time, then id, both descending), filtered,
-- paged by key.
--
-- The search by name: client_name (the one without a language tag) with
-- ASCII letters in lower case, written by the store with the metadata.
ALTER TABLE clients ADD COLUMN client_name_key TEXT;

-- The existing clients' name keys (SQLite's lower() folds ASCII letters
-- only, as the store does), before the indexes that hold them. Filling a
-- column is not a change other processes' caches must hear of (they hold
-- no such column), so the change log's trigger is set aside while it is
-- written, and put back as it was.
DROP TRIGGER clients_changed_update;

UPDATE clients SET client_name_key = lower(json_extract(metadata, '$.client_name'))
WHERE json_valid(metadata) AND json_type(metadata, '$.client_name') = 'text';

CREATE TRIGGER clients_changed_update AFTER UPDATE ON clients
BEGIN
    INSERT INTO client_changes (client_id) VALUES (old.client_id);
END;

-- One index per way a page is read: in the listing's order, all clients,
-- a software's (it replaces the index on software_id alone, and serves the
-- count of a software's clients as well), a state's; and the range of
-- names that begin with a prefix. Each also holds the state, software and
-- name key the others filter on, so that those are checked in the index,
-- without reading the clients' rows.
CREATE INDEX clients_issued
    ON clients (client_id_issued_at, client_id, state, software_id, client_name_key);
DROP INDEX clients_software_id;
CREATE INDEX clients_software_issued
    ON clients (software_id, client_id_issued_at, client_id, state, client_name_key);
CREATE INDEX clients_state_issued
    ON clients (state, client_id_issued_at, client_id, software_id, client_name_key);
CREATE INDEX clients_name_key
    ON clients (client_name_key, client_id_issued_at, client_id, state, software_id);

-- The search by redirect host: one row per client and distinct host of its
-- redirect_uris (lower case; a URI without a host gives none), written by
-- the store in the transaction that writes the metadata. Each holds the
-- client's registration time, so that a host's clients are read newest
-- first, and its software and name key, which are written with the
-- metadata too, so that those filters are checked on the host's rows. The
-- rows follow their client's id when a pending client takes the
-- provider's, and go with the client.
CREATE TABLE client_redirect_hosts (
    host                TEXT NOT NULL,
    client_id_issued_at INTEGER NOT NULL,
    client_id           TEXT NOT NULL
        REFERENCES clients (client_id) ON UPDATE CASCADE ON DELETE CASCADE,
    software_id         TEXT,
    client_name_key     TEXT,
    PRIMARY KEY (host, client_id_issued_at, client_id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX client_redirect_hosts_client ON client_redirect_hosts (client_id, host);

-- Hosts, as well as SQL can take them from the URI text: the authority
-- after `scheme://`, without user information (up to the first `@`) and
-- port, lower-cased. The store takes them from the parsed URL instead, and
-- this cannot do what the URL parser does: internationalized names are
-- kept as written, not turned into their `xn--` form; percent-encoded
-- hosts are not decoded; IPv4 addresses written otherwise than as four
-- decimals are not normalized; a `\` is not read as a `/`; and user
-- information containing an `@` leaves a wrong host. A client whose host
-- was filled in wrongly is found by its host once its metadata is next
-- written.
INSERT INTO client_redirect_hosts
    (host, client_id_issued_at, client_id, software_id, client_name_key)
WITH uris AS (
    SELECT c.client_id, c.client_id_issued_at, u.value AS uri
    FROM clients c, json_each(c.metadata, '$.redirect_uris') u
    WHERE json_valid(c.metadata) AND json_type(c.metadata, '$.redirect_uris') = 'array'
        AND u.type = 'text' AND instr(u.value, '://') > 0
        AND instr(u.value, '://') = instr(u.value, ':')
), rests AS (
    SELECT client_id, client_id_issued_at, substr(uri, instr(uri, '://') + 3) AS rest
    FROM uris
), authorities AS (
    SELECT client_id, client_id_issued_at,
        substr(rest, 1, instr(replace(replace(rest, '?', '/'), '#', '/') || '/', '/') - 1)
            AS authority
    FROM rests
), host_ports AS (
    SELECT client_id, client_id_issued_at,
        substr(authority, instr(authority, '@') + 1) AS host_port
    FROM authorities
), hosts AS (
    SELECT client_id, client_id_issued_at,
        lower(CASE WHEN substr(host_port, 1, 1) = '['
                   THEN substr(host_port, 1, instr(host_port, ']'))
                   ELSE substr(host_port, 1, instr(host_port || ':', ':') - 1) END) AS host
    FROM host_ports
)
SELECT DISTINCT h.host, h.client_id_issued_at, h.client_id, c.software_id, c.client_name_key
FROM hosts h JOIN clients c ON c.client_id = h.client_id
WHERE h.host <> '';
