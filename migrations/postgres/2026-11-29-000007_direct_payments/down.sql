DROP TABLE invoice_scripts;
ALTER TABLE invoices DROP COLUMN amount_paid;
ALTER TABLE payments DROP COLUMN amount;
ALTER TABLE payments DROP COLUMN via;
DROP INDEX payments_invoice;
ALTER TABLE payments ADD CONSTRAINT payments_invoice_id_key UNIQUE (invoice_id);
