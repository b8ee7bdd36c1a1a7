-- One payment per invoice, one invoice per transaction: txid is UNIQUE across all payments,
-- so a transaction can never pay twice (no replay).
CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id TEXT NOT NULL UNIQUE REFERENCES invoices (id),
    txid TEXT NOT NULL UNIQUE,
    raw_tx BLOB NOT NULL,
    -- 'broadcasting' (claimed, broadcast in flight or ambiguous) or 'broadcast'.
    state TEXT NOT NULL,
    memo TEXT,
    refund_to TEXT,
    created_ms BIGINT NOT NULL,
    paid_ms BIGINT
);
CREATE INDEX payments_state ON payments (state);

-- The built-in development chain: its transactions, coins and blocks.
CREATE TABLE dev_txs (
    txid TEXT PRIMARY KEY,
    raw BLOB NOT NULL,
    -- NULL while in the mempool.
    height BIGINT,
    first_seen_ms BIGINT NOT NULL
);
CREATE TABLE dev_coins (
    txid TEXT NOT NULL,
    vout INTEGER NOT NULL,
    value BIGINT NOT NULL,
    -- The whole locking bytecode field: token prefix (if any), then the script.
    script BLOB NOT NULL,
    height BIGINT,
    -- The transaction that spends it, once one does.
    spent_by TEXT,
    PRIMARY KEY (txid, vout)
);
CREATE TABLE dev_blocks (
    height BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    time_ms BIGINT NOT NULL
);
