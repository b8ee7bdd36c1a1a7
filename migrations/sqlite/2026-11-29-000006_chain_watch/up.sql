-- The main chain as the chain watcher last processed it: its newest blocks by height, so a
-- reorg is found by comparing hashes and a restart resumes from the last block processed.
CREATE TABLE chain_blocks (
    height BIGINT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    processed_ms BIGINT NOT NULL
);

-- What the chain says of a payment's transaction. `chain` is NULL for payments recorded before
-- the watcher existed (never judged), then 'mempool', 'block' (in `block_hash`), 'gone' (in
-- neither: dropped or double-spent) or 'final' (buried deep enough to stop watching).
ALTER TABLE payments ADD COLUMN chain TEXT;
ALTER TABLE payments ADD COLUMN block_hash TEXT;
ALTER TABLE payments ADD COLUMN block_height BIGINT;
ALTER TABLE payments ADD COLUMN confirmations INTEGER;
-- The id of a double-spend proof seen for it.
ALTER TABLE payments ADD COLUMN double_spend_proof TEXT;
CREATE INDEX payments_chain ON payments (chain, block_height);
CREATE INDEX payments_block_hash ON payments (block_hash);

-- Confirmations that make the invoice `confirmed` (0: paid is final), fixed when it is made;
-- why it became `invalid`.
ALTER TABLE invoices ADD COLUMN confirmations_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN invalid_reason TEXT;
-- A store's own confirmation count; NULL takes the server's.
ALTER TABLE stores ADD COLUMN confirmations INTEGER;

-- The dev chain's double-spend proofs (made by its rehearsal): the first-seen transaction, the
-- proof's id, and the conflicting transaction that was refused.
CREATE TABLE dev_dsproofs (
    txid TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    conflict BLOB NOT NULL,
    created_ms BIGINT NOT NULL
);
