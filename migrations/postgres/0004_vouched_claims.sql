-- The client metadata a verified software statement set (JSON), pinned to
-- the registration: a later change without a new statement keeps it. NULL
-- when no statement was used. The software_id column now holds the software
-- a client counts against for max_clients_per_software_id.
ALTER TABLE clients ADD COLUMN vouched TEXT;
