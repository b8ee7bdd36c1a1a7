DROP INDEX invoices_store_status_seq;
DROP INDEX invoices_store_seq;
ALTER TABLE invoices DROP COLUMN store_id;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE api_keys DROP COLUMN store_id;
DROP TABLE stores;
