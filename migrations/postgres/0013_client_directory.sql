-- The operator's directory of clients (the console's Clients page): clients
-- newest first (registration time, then id, both descending), filtered,
-- paged by key.
--
-- The search by name: client_name (the one without a language tag) with
-- ASCII letters in lower case, written by the store with the metadata.
-- Compared byte by byte (collation "C", as SQLite compares), so that a
-- prefix is one range of the index whatever the database's collation.
ALTER TABLE clients ADD COLUMN client_name_key TEXT COLLATE "C";

-- The existing clients' name keys (ASCII letters folded, as the store
-- does), before the indexes that hold them. Filling a column is not a
-- change other instances' caches must hear of (they hold no such column),
-- so the notifying trigger is off while it is written.
ALTER TABLE clients DISABLE TRIGGER clients_changed;

UPDATE clients
SET client_name_key = translate(metadata::jsonb ->> 'client_name',
                                'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
WHERE jsonb_typeof(metadata::jsonb -> 'client_name') = 'string';

ALTER TABLE clients ENABLE TRIGGER clients_changed;

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
    client_id_issued_at BIGINT NOT NULL,
    client_id           TEXT NOT NULL
        REFERENCES clients (client_id) ON UPDATE CASCADE ON DELETE CASCADE,
    software_id         TEXT,
    client_name_key     TEXT COLLATE "C",
    PRIMARY KEY (host, client_id_issued_at, client_id)
);
CREATE UNIQUE INDEX client_redirect_hosts_client ON client_redirect_hosts (client_id, host);

-- Hosts, as well as SQL can take them from the URI text: the authority
-- after `scheme://`, without user information (up to the last `@`) and
-- port, lower-cased. The store takes them from the parsed URL instead, and
-- this cannot do what the URL parser does: internationalized names are
-- kept as written, not turned into their `xn--` form; percent-encoded
-- hosts are not decoded; IPv4 addresses written otherwise than as four
-- decimals are not normalized; a `\` is not read as a `/`. A client whose
-- host was filled in wrongly is found by its host once its metadata is
-- next written.
INSERT INTO client_redirect_hosts
    (host, client_id_issued_at, client_id, software_id, client_name_key)
SELECT DISTINCT hosts.host, hosts.client_id_issued_at, hosts.client_id, hosts.software_id,
    hosts.client_name_key
FROM (
    SELECT c.client_id, c.client_id_issued_at, c.software_id, c.client_name_key,
        lower(substring(u.uri FROM
            '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#]*@)?(\[[^]/?#]*\]|[^:/?#]*)')) AS host
    FROM clients c,
        jsonb_array_elements_text(CASE
            WHEN jsonb_typeof(c.metadata::jsonb -> 'redirect_uris') = 'array'
            THEN c.metadata::jsonb -> 'redirect_uris' ELSE '[]'::jsonb END) AS u (uri)
) AS hosts
WHERE hosts.host <> '';
