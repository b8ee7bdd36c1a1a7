DROP TABLE invoice_scripts;
ALTER TABLE invoices DROP COLUMN amount_paid;
DROP INDEX payments_invoice;
ALTER TABLE payments DROP COLUMN amount;
ALTER TABLE payments DROP COLUMN via;
CREATE UNIQUE INDEX payments_invoice_id_key ON payments (invoice_id);
