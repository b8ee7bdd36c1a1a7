-- A store's webhook endpoints: where its invoices' events are POSTed, signed with the secret.
CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id BIGINT NOT NULL REFERENCES stores (id),
    url TEXT NOT NULL,
    -- The HMAC key: kept as it is, since signing needs it (shown to the merchant once).
    secret TEXT NOT NULL,
    -- The event kinds it wants, space-separated; '*' for every kind.
    kinds TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    -- Why the sender turned it off, when it did.
    disabled_reason TEXT,
    -- Events up to this outbox id were committed before the endpoint existed: not sent to it.
    after_event BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_store ON webhook_endpoints (store_id);

-- One event to one endpoint (or to a Lightning invoice's own `webhook`, endpoint NULL): the
-- body as sent, where it stands, and when it is tried next. What each attempt got is in
-- webhook_attempts.
CREATE TABLE webhook_deliveries (
    -- Random, 32 hex: the delivery id the receiver reads.
    id TEXT PRIMARY KEY,
    -- 'e<endpoint>:<event>' or 'ln:<event>': one delivery per event and target, however often
    -- the outbox is read.
    target_event TEXT NOT NULL UNIQUE,
    endpoint_id BIGINT REFERENCES webhook_endpoints (id),
    event_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    -- Deliveries to one target for one topic go in event order.
    topic TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The HMAC key of a Lightning invoice's delivery (the wallet's invoice key); NULL for an
    -- endpoint's, which signs with the endpoint's secret.
    signing_key TEXT,
    -- The Lightning payment whose `webhook_status` follows the delivery.
    payment_hash TEXT,
    -- 'pending', 'delivered' or 'failed' (attempts used up, or the URL refused).
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Bumped by each redelivery, so an attempt in flight at the time cannot close it.
    round INTEGER NOT NULL DEFAULT 0,
    next_try_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    done_ms BIGINT
);
-- The pending ones by when they are due: the sender's one hot lookup.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_try_ms) WHERE state = 'pending';
-- An undelivered earlier event of the same topic holds a later one back (per-invoice order).
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (topic, event_id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, event_id);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
    at_ms BIGINT NOT NULL,
    -- The HTTP status, NULL when there was no answer.
    status INTEGER,
    error TEXT,
    latency_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);

-- How far the webhook sender has read the outbox: events after it are still to fan out.
CREATE TABLE webhook_cursor (
    id INTEGER PRIMARY KEY,
    event_id BIGINT NOT NULL
);
-- What was committed before webhooks existed is not sent.
INSERT INTO webhook_cursor (id, event_id) VALUES (1, COALESCE((SELECT MAX(id) FROM events), 0));

-- What a Lightning invoice's `webhook` answered, as LNbits keeps it: the HTTP status as text,
-- or '-1' when there was no answer.
ALTER TABLE ln_payments ADD COLUMN webhook_status TEXT;
