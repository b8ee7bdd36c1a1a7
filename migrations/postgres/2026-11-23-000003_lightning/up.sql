-- Lightning wallets (the LNbits-compatible path). Keys are stored as SHA-256 hashes: they are
-- shown once, when the wallet is made.
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    inkey_hash BYTEA NOT NULL UNIQUE,
    adminkey_hash BYTEA NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);

-- Every payment in or out of a wallet. A balance is the sum of these rows (settled ones, and
-- outgoing ones still pending), never a counter of its own. Amounts and fees are msat, negative
-- when leaving the wallet.
CREATE TABLE ln_payments (
    checking_id TEXT PRIMARY KEY,
    payment_hash TEXT NOT NULL,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    amount_msat BIGINT NOT NULL,
    fee_msat BIGINT NOT NULL,
    bolt11 TEXT NOT NULL,
    memo TEXT,
    -- 'pending', 'success' or 'failed'.
    status TEXT NOT NULL,
    preimage TEXT,
    expiry_ms BIGINT,
    extra TEXT NOT NULL,
    webhook TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX ln_payments_wallet ON ln_payments (wallet_id, created_ms);
CREATE INDEX ln_payments_hash ON ln_payments (payment_hash);
