-- Wallets that pay an invoice's address directly may pay it in parts, so an invoice may have
-- several payments: `invoice_id` is no longer UNIQUE (a transaction still pays once: `txid`
-- stays UNIQUE).
ALTER TABLE payments DROP CONSTRAINT payments_invoice_id_key;
CREATE INDEX payments_invoice ON payments (invoice_id);
-- 'jpp' (posted by a wallet) or 'chain' (seen on the chain, paid to the address).
ALTER TABLE payments ADD COLUMN via TEXT NOT NULL DEFAULT 'jpp';
-- Sats it paid to the invoice's outputs; NULL for payments posted before this existed.
ALTER TABLE payments ADD COLUMN amount BIGINT;

-- Sats received on the chain for an invoice (the sum of its chain payments), kept with it.
ALTER TABLE invoices ADD COLUMN amount_paid BIGINT;

-- The locking scripts an invoice's outputs ask for (hex, without a token prefix): a
-- transaction's outputs are looked up here, so matching costs the same however many
-- invoices are open.
CREATE TABLE invoice_scripts (
    script TEXT NOT NULL,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    PRIMARY KEY (script, invoice_id)
);
