-- A store is one merchant: it owns its keys and its invoices. The store every existing key and
-- invoice joins is the default one (id 1), so a one-merchant setup keeps working unchanged.
CREATE TABLE stores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
INSERT INTO stores (name, created_ms) VALUES ('default', 0);

-- SQLite cannot add a column with a REFERENCES clause and a non-NULL default; the store layer
-- only ever writes ids of existing stores.
ALTER TABLE api_keys ADD COLUMN store_id BIGINT NOT NULL DEFAULT 1;
-- What the key may do, space-separated (`invoices:create invoices:read invoices:cancel`).
-- Keys made before scopes existed keep every one.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'invoices:create invoices:read invoices:cancel';
ALTER TABLE invoices ADD COLUMN store_id BIGINT NOT NULL DEFAULT 1;
-- A store's invoice list, newest first, by status or not.
CREATE INDEX invoices_store_seq ON invoices (store_id, seq);
CREATE INDEX invoices_store_status_seq ON invoices (store_id, status, seq);
