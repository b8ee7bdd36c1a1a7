-- Merchant API keys: only a SHA-256 of each key is kept.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash BLOB NOT NULL UNIQUE,
    label TEXT,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE invoices (
    -- Insertion order, for stable cursor pagination.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    memo TEXT,
    merchant_data TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    fee_per_kb BIGINT NOT NULL,
    api_key_id BIGINT REFERENCES api_keys (id),
    updated_ms BIGINT NOT NULL
);
CREATE INDEX invoices_status_seq ON invoices (status, seq);

CREATE TABLE invoice_outputs (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    idx INTEGER NOT NULL,
    address TEXT NOT NULL,
    -- Token prefix (if any) followed by the locking script: what a paying output must carry.
    locking_bytecode BLOB NOT NULL,
    amount BIGINT NOT NULL,
    description TEXT,
    token_category BLOB,
    token_amount BIGINT,
    nft_capability TEXT,
    nft_commitment BLOB,
    PRIMARY KEY (invoice_id, idx)
);
CREATE INDEX invoice_outputs_locking_bytecode ON invoice_outputs (locking_bytecode);

-- The transactional outbox: written in the same transaction as the state change it reports.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX events_topic_id ON events (topic, id);
