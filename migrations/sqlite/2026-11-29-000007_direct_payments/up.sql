-- Wallets that pay an invoice's address directly may pay it in parts, so an invoice may have
-- several payments: `invoice_id` is no longer UNIQUE (a transaction still pays once: `txid`
-- stays UNIQUE). SQLite drops a constraint by rebuilding the table.
CREATE TABLE payments_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    txid TEXT NOT NULL UNIQUE,
    raw_tx BLOB NOT NULL,
    state TEXT NOT NULL,
    memo TEXT,
    refund_to TEXT,
    created_ms BIGINT NOT NULL,
    paid_ms BIGINT,
    chain TEXT,
    block_hash TEXT,
    block_height BIGINT,
    confirmations INTEGER,
    double_spend_proof TEXT,
    -- 'jpp' (posted by a wallet) or 'chain' (seen on the chain, paid to the address).
    via TEXT NOT NULL DEFAULT 'jpp',
    -- Sats it paid to the invoice's outputs; NULL for payments posted before this existed.
    amount BIGINT
);
INSERT INTO payments_new (id, invoice_id, txid, raw_tx, state, memo, refund_to, created_ms,
    paid_ms, chain, block_hash, block_height, confirmations, double_spend_proof)
SELECT id, invoice_id, txid, raw_tx, state, memo, refund_to, created_ms, paid_ms, chain,
    block_hash, block_height, confirmations, double_spend_proof
FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_state ON payments (state);
CREATE INDEX payments_chain ON payments (chain, block_height);
CREATE INDEX payments_block_hash ON payments (block_hash);
CREATE INDEX payments_invoice ON payments (invoice_id);

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
