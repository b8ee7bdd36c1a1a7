-- A store's account xpub: invoices made with an amount get the next receiving address
-- derived from it (`<xpub>/0/<index>`), the server holding no secret.
ALTER TABLE stores ADD COLUMN xpub TEXT;
-- The lowest receiving index never handed out.
ALTER TABLE stores ADD COLUMN next_index BIGINT NOT NULL DEFAULT 0;
-- The receiving index of an invoice's address, when the store's xpub gave it.
ALTER TABLE invoices ADD COLUMN address_index BIGINT;
CREATE INDEX invoices_store_address ON invoices (store_id, address_index);
