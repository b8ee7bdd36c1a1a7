DROP INDEX invoices_store_address;
ALTER TABLE invoices DROP COLUMN address_index;
ALTER TABLE stores DROP COLUMN next_index;
ALTER TABLE stores DROP COLUMN xpub;
