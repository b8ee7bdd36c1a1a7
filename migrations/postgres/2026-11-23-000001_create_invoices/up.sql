-- Merchant API keys: only a SHA-256 of each key is kept.
CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_hash BYTEA NOT NULL UNIQUE,
    label TEXT,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE invoices (
    -- Insertion order, for stable cursor pagination.
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    memo TEXT,
    -- The outputs asked for, as the JSON clients read them (immutable once created).
    outputs TEXT NOT NULL,
    merchant_data TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    fee_per_kb BIGINT NOT NULL,
    api_key_id BIGINT REFERENCES api_keys (id),
    updated_ms BIGINT NOT NULL
);
CREATE INDEX invoices_status_seq ON invoices (status, seq);

-- The transactional outbox: written in the same transaction as the state change it reports.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX events_topic_id ON events (topic, id);
